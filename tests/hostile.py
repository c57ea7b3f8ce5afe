"""Hostile and huge check files, each with the located problem featmon reports for it (as
`checks/hostile.yaml` under the configuration's directory; `{size}`: the file's size)."""

from __future__ import annotations

from collections.abc import Callable

VIEW = """\
  - name: view_{index}
    entity: user_id
    ttl: 1d
    features: {{spend: float}}
    offline: {{store: lake, path: view.parquet}}
    checks:
      - {{kind: row_count, min: 1}}
"""


# Markup where a check file names a model: refused by the name's pattern before any report,
# alert or metric could carry it (which escape it anyway: tests/test_model_report.py).
MARKUP_MODEL = """\
feature_views:
  - name: users
    entity: user_id
    ttl: 1d
    features: {spend: float}
    offline: {store: lake, path: users.parquet}
models:
  - name: "<script>alert(1)</script>"
    features: [users]
    owner: "<b>risk</b>"
    serving_log: {store: lake, path: logs}
"""


def laughs() -> str:
    """Nine levels of nine aliases: a few hundred bytes that expand to 387 million nodes."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join([*lines, "feature_views: *l9", ""])


def huge() -> str:
    """An honest-looking check file of 50 MB (300,000 views)."""
    views = [VIEW.format(index=index) for index in range(300_000)]
    return "feature_views:\n" + "".join(views)


HOSTILE: dict[str, tuple[Callable[[], str], str]] = {
    "billion laughs": (
        laughs,
        "checks/hostile.yaml:6: l5[0]: YAML limit at column 10: expected at most 100000 YAML "
        "nodes with aliases expanded, found more",
    ),
    "10,000 deep": (
        lambda: "feature_views: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "[0]: YAML limit at column 65: expected YAML nested at most 50 levels deep, "
        "found deeper nesting",
    ),
    "5,000 digits": (
        lambda: "feature_views:\n" + VIEW.format(index=0).replace("min: 1", "min: " + "9" * 5000),
        "checks/hostile.yaml:8: feature_views[0].checks[0].min: YAML limit at column 32: "
        "expected a number of at most 32 digits, found one of 5000",
    ),
    "markup in a model's name": (
        lambda: MARKUP_MODEL,
        "checks/hostile.yaml:8: models[0].name: expected text matching "
        "^[A-Za-z_][A-Za-z0-9_.-]*$, found '<script>alert(1)</script>'",
    ),
    "50 MB": (
        huge,
        "checks/hostile.yaml: expected a file of at most 1048576 bytes, found {size} bytes",
    ),
}
