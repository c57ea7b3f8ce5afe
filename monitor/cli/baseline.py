"""`featmon baseline accept --config FILE --view NAME [--store NAME] [--comment TEXT]`: record the
current columns of a view's offline source as its schema baseline in the state database, so that
its `schema_drift` checks with `baseline: true` pass again after a deliberate change.

Part of the command line (`monitor.cli.main`), so it writes to stdout and stderr. Exit codes: 0
accepted; 3 the configuration, the view, the store or the state database is not
usable (the reason on stderr).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from monitor.cli.usage import EXIT_INVALID, add_config, config_path


def add_parser(commands: Any) -> None:  # noqa: ANN401  (argparse's private _SubParsersAction)
    """Add `baseline accept` to the `featmon` command line."""
    baseline = commands.add_parser("baseline", help="manage schema baselines")
    actions = baseline.add_subparsers(dest="action", required=True, metavar="ACTION")
    accept = actions.add_parser(
        "accept", help="record the current offline schema of a view as its baseline"
    )
    add_config(accept)
    accept.add_argument("--view", required=True, help="the feature view")
    accept.add_argument(
        "--store", help="the view's offline store (default: the one its check file names)"
    )
    accept.add_argument("--comment", help="why the schema changed, kept with the baseline")
    accept.set_defaults(handler=accept_command)


def accept_command(args: argparse.Namespace) -> int:
    # Imported here: the command line loads the stores only for the commands that use them.
    from checks.secrets import Secrets  # noqa: PLC0415 - imported when the command runs: keeps --help fast
    from monitor.app import build_app  # noqa: PLC0415 - imported when the command runs: keeps --help fast
    from monitor.errors import StoreError  # noqa: PLC0415 - imported when the command runs: keeps --help fast
    from monitor.loader import load  # noqa: PLC0415 - imported when the command runs: keeps --help fast
    from monitor.runs.analytics import accept_baseline  # noqa: PLC0415 - imported when the command runs: keeps --help fast
    from monitor.state import StateError  # noqa: PLC0415 - imported when the command runs: keeps --help fast

    loaded = load(config_path(args.config))
    secrets = Secrets.within(loaded.config)
    args.secrets.add(secrets)  # the log of `featmon` masks them from now on
    view = next((v.view for v in loaded.views if v.view.name == args.view), None)
    if view is None or view.offline is None:
        known = sorted(v.view.name for v in loaded.views if v.view.offline is not None)
        what = "no such feature view" if view is None else "it has no offline source"
        return _refuse(f"cannot accept a baseline of {args.view!r}: {what} (views: {known})")
    if args.store is not None and args.store != view.offline.store:
        return _refuse(
            f"expected --store {view.offline.store!r} (the offline store of {view.name}), "
            f"found {args.store!r}"
        )
    with build_app(loaded) as app:
        if app.state is None:
            return _refuse("the state database is unavailable (see the log)")
        try:
            baseline = accept_baseline(
                view,
                app.stores.offline[view.offline.store],
                app.state,
                datetime.now(UTC),
                _user(),
                args.comment,
            )
        except (StoreError, StateError) as exc:
            return _refuse(secrets.scrub(str(exc)))
    sys.stdout.write(
        f"accepted the schema of {view.name} on {baseline.store} ({baseline.source}): "
        f"{len(baseline.columns)} columns\n"
    )
    return 0


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return None


def _refuse(reason: str) -> int:
    sys.stderr.write(f"featmon baseline accept: {reason}\n")
    return EXIT_INVALID
