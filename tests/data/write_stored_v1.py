"""Wrote `stored_v1.json`: the JSON featmon 0.1 kept in its state database and outbox for each
value of `tests/stored_samples.py`, written by the serializer of that version (the `as_json`
methods and `alerts.codec`). Run once, before that serializer was replaced; kept as a record
of how the file was made (it no longer runs against the current code)."""

from __future__ import annotations

import json
from pathlib import Path

from alerts.codec import (  # type: ignore[attr-defined]  # event_to_json: gone since
    event_to_json,
    group_to_json,
    notification_to_json,
)
from monitor.state.rows import result_rows, run_row
from tests import stored_samples as s


def main() -> None:
    rows = result_rows(s.RUN)
    run = run_row(s.RUN, s.T0)
    out = {
        "run": {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in run.items()},
        "run_json": s.RUN.as_json(),  # type: ignore[attr-defined]
        "results": {
            name: {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
            for name, row in zip(s.RESULTS, rows, strict=True)
        },
        "records": {name: r.as_json() for name, r in s.RECORDS.items()},  # type: ignore[attr-defined]
        "events": {name: event_to_json(e) for name, e in s.EVENTS.items()},
        "notifications": {n: notification_to_json(v) for n, v in s.NOTIFICATIONS.items()},
        "groups": {name: group_to_json(g) for name, g in s.GROUPS.items()},
    }
    path = Path(__file__).with_name("stored_v1.json")
    path.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")


if __name__ == "__main__":
    main()
