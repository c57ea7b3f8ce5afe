"""The `featmon` command line: validate, check, list, run, demo, init, schema, baseline.

Exit codes (the table is in `monitor.cli.usage`): 0 all pass, 1 warnings only, 2 any failure, 3 any
error (a probe could not measure, the configuration is invalid, something the command needs
cannot be used: a store, a path, a port), 4 a usage error (an unknown option, a value that does
not parse, a view, model or check that is not configured, no configuration found). Results go to
stdout; logs go to stderr; a user's mistake is one line on stderr, never a traceback
(`--log-level debug` adds it).

The modules each command needs are imported when it runs, so that `validate` (and any command
refusing a configuration) answers without loading the stores, the state database or the web
stack.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from checks.errors import ConfigError
from monitor.cli import baseline as baseline_command
from monitor.cli.usage import (
    EXIT_FAIL,
    EXIT_INVALID,
    EXIT_USAGE,
    UsageError,
    add_config,
    config_path,
)
from monitor.errors import MonitorError

if TYPE_CHECKING:
    from checks.result import RunResult
    from checks.secrets import Secrets
    from monitor.loader import Loaded

# The commands' own modules are imported in their handlers (see the module docstring).
# ruff: noqa: PLC0415

log = logging.getLogger("featmon")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs = _setup_logging(args.log_level, args.log_format)
    args.secrets = logs  # the handlers add the secrets of each configuration they load
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        print(f"featmon {args.command}: {exc} (see featmon {args.command} --help)", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        only = exc.problems[0] if len(exc.problems) == 1 else None  # then one line
        print(logs.scrub(str(exc if only is None else only)), file=sys.stderr)
        return EXIT_INVALID
    except MonitorError as exc:  # a store or the state database refused at start, a port in use
        return _refuse(args.command, logs.scrub(str(exc)), exc)
    except OSError as exc:  # a path the user named that cannot be used
        where = "" if exc.filename is None else f"{exc.filename}: "
        return _refuse(args.command, logs.scrub(f"{where}{exc.strerror or exc}"), exc)
    except KeyboardInterrupt:
        return 130
    except Exception:  # the command's boundary: the traceback goes through the scrubbing log
        log.exception("featmon %s failed", args.command)
        return EXIT_INVALID
    return code


def _load(args: argparse.Namespace, path: Path, env: Mapping[str, str] | None = None) -> Loaded:
    """`load`, and every secret of the configuration masked in the log from now on."""
    from checks.secrets import Secrets
    from monitor.loader import load

    loaded = load(path, env)
    args.secrets.add(Secrets.within(loaded.config))
    return loaded


def _refuse(command: str, reason: str, exc: BaseException | None = None) -> int:
    """One line on stderr, exit 3; the traceback of `exc` only at `--log-level debug`."""
    log.debug("featmon %s failed", command, exc_info=exc)
    print(f"featmon {command}: {reason}", file=sys.stderr)
    return EXIT_INVALID


class _Parser(argparse.ArgumentParser):
    """argparse, except that a wrong option is one line and exit 4, featmon's usage error:
    argparse's own exit 2 would read as "a check failed" to a CI gate."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"featmon {version('featmon')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "featmon (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="featmon",
        description="Data-quality and feature monitoring for ML feature stores.",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-format", default="text", choices=["text", "json"])
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="validate config.yaml and its check files")
    add_config(validate)
    validate.set_defaults(handler=_validate)

    check = commands.add_parser("check", help="run every check once and exit with its status")
    add_config(check)
    check.add_argument(
        "--view", action="append", default=[], metavar="NAME", help="only this view (repeatable)"
    )
    check.add_argument(
        "--model", action="append", default=[], metavar="NAME", help="only this model (repeatable)"
    )
    check.add_argument(
        "--check", action="append", default=[], metavar="ID", help="only this check (repeatable)"
    )
    _run_options(check)
    check.set_defaults(handler=_check)

    listing = commands.add_parser(
        "list", help="list the stores, views and models (schedules, next runs), checks configured"
    )
    add_config(listing)
    listing.add_argument("--format", choices=["text", "json"], default="text")
    listing.set_defaults(handler=_list)

    run_demo = commands.add_parser(
        "demo", help="build a local feature store with known faults and check it"
    )
    run_demo.add_argument(
        "--dir", type=Path, default=Path("featmon-demo"), help="where to build the demo store"
    )
    _run_options(run_demo)
    run_demo.set_defaults(handler=_demo)

    init = commands.add_parser(
        "init", help="write config.yaml and check files for a Feast feature repository"
    )
    init.add_argument(
        "--from-feast",
        required=True,
        type=Path,
        metavar="PATH",
        help="the Feast feature repository (the directory of feature_store.yaml, or the file)",
    )
    init.add_argument("--out", required=True, type=Path, help="where to write config.yaml")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.set_defaults(handler=_init)

    run = commands.add_parser(
        "run", help="the daemon: check every feature view and model on its schedule until stopped"
    )
    add_config(run)
    run.add_argument("--workers", type=int, default=8, help="probes running at once (default 8)")
    run.add_argument(
        "--grace",
        type=_duration,
        default=timedelta(seconds=30),
        help="on SIGTERM, how long runs going may take to finish (default 30s)",
    )
    run.add_argument(
        "--misfire-grace",
        type=_duration,
        default=timedelta(seconds=60),
        help="drop a run that cannot start within this of its time (default 60s)",
    )
    run.add_argument(
        "--watch-interval",
        type=_duration,
        default=timedelta(seconds=2),
        help="how often to look for changed configuration files (default 2s)",
    )
    run.set_defaults(handler=_run_daemon)

    health = commands.add_parser(
        "health", help="exit 0 when the daemon of this configuration answers /healthz, else 1"
    )
    health.add_argument("--config", required=True, type=Path, help="path to config.yaml")
    health.set_defaults(handler=_health)

    baseline_command.add_parser(commands)

    write_schema = commands.add_parser(
        "schema", help="write the JSON Schemas of config.yaml and check files"
    )
    write_schema.add_argument("--out", type=Path, default=Path("schemas"), help="directory")
    write_schema.set_defaults(handler=_schema)
    return parser


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument(
        "--report",
        type=Path,
        help="write the HTML report to this file (.html) or directory "
        "(default: the reports dir of config.yaml)",
    )
    parser.add_argument(
        "--no-state",
        action="store_true",
        help="do not record the run in the state database",
    )
    parser.add_argument(
        "--now",
        type=_moment,
        help="the scheduled time to measure against, RFC 3339 with a zone (default: now)",
    )


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected an RFC 3339 time such as 2026-11-26T06:00:00Z, found {text!r}"
        ) from exc
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"expected a time with a zone (Z or +01:00), found {text!r}"
        )
    return moment.astimezone(UTC)


def _duration(text: str) -> timedelta:
    from checks.duration import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _validate(args: argparse.Namespace) -> int:
    loaded = _load(args, config_path(args.config))
    from monitor.config import warnings as config_warnings
    from monitor.stores import soda

    soda_warning = soda.missing_extra_warning(loaded.planned)
    if soda_warning is not None:
        print(f"warning: {soda_warning}", file=sys.stderr)
    for warning in config_warnings(loaded.config):
        print(f"warning: {loaded.path}: {warning}", file=sys.stderr)
    print(
        f"{loaded.path}: valid ({len(loaded.check_files)} check files, "
        f"{len(loaded.views)} feature views, {len(loaded.planned)} checks)"
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    loaded = _load(args, config_path(args.config))
    try:
        loaded = loaded.only(args.view, args.check, args.model)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    run, report = _run(loaded, args.now, not args.no_state, args.report)
    _print_run(run, args.format, report)
    return run.exit_code


def _list(args: argparse.Namespace) -> int:
    from monitor.cli import listing

    doc = listing.describe(_load(args, config_path(args.config)), datetime.now(UTC))
    print(json.dumps(doc, indent=2) if args.format == "json" else listing.table(doc), end="")
    if args.format == "json":
        print()
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Exit 0 when every check has the status its planted fault gives it (the demo worked:
    it found every fault), 2 when any differs (it says which); `featmon check` on the same
    store keeps its gate's code (2: planted failures)."""
    from monitor import demo

    directory: Path = args.dir.resolve()
    now: datetime = args.now or datetime.now(UTC).replace(microsecond=0)
    built = demo.build(directory, now)
    log.info("built the demo store in %s: %s", directory, built.summary)
    config_path = demo.example_config()
    loaded = _load(args, config_path, {**os.environ, "FEATMON_DEMO_DIR": str(directory)})
    run, report = _run(loaded, now, not args.no_state, args.report)
    _print_run(run, args.format, report)
    differ = demo.unexpected({r.check: r.status.value for r in run.results})
    for check, (planted, found) in differ.items():
        print(f"featmon demo: {check} is {found}, planted {planted}", file=sys.stderr)
    if args.format == "text":
        default = directory == (Path.cwd() / "featmon-demo").resolve()
        env = "" if default else f"FEATMON_DEMO_DIR={directory} "
        verdict = (
            f"the demo found each of its planted faults ({len(demo.PLANTED)} checks as planted)"
            if not differ
            else f"{len(differ)} checks differ from the planted faults (see above)"
        )
        print(
            f"\n{verdict}. The same checks, from the repository root (exit {run.exit_code}: "
            f"the planted failures):\n"
            f"  {env}featmon check --config config.example.yaml --now {now:%Y-%m-%dT%H:%M:%SZ}"
        )
    return 0 if not differ else EXIT_FAIL


def _init(args: argparse.Namespace) -> int:
    from monitor.feast import init as feast_init
    from monitor.feast.registry import RegistryError

    now = datetime.now(UTC)
    try:
        written = feast_init.init_from_feast(args.from_feast, args.out, now, force=args.force)
    except (feast_init.InitError, RegistryError) as exc:
        print(f"featmon init: {exc}", file=sys.stderr)
        return EXIT_INVALID
    for path in written.files:
        print(f"wrote {path}")
    for note in written.notes:
        print(f"note: {note}")
    for path in written.stale:
        print(f"note: {path} was not written by this run and is still loaded by checks/*.yaml")
    config = args.out / "config.yaml"
    if written.env:
        print(f"\nSet {', '.join(written.env)} in the environment, then:")
    else:
        print("\nNext:")
    print(f"  featmon validate --config {config}\n  featmon check --config {config}")
    return 0


def _run_daemon(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UsageError(f"expected --workers of 1 or more, found {args.workers}")
    path = config_path(args.config)
    unused = [_load(args, path)]  # refused before the daemon's modules load
    from monitor.daemon.process import build_daemon, serve
    from monitor.daemon.service import DaemonSettings

    settings = DaemonSettings(
        workers=args.workers,
        grace=args.grace,
        misfire_grace=args.misfire_grace,
        watch_interval=args.watch_interval,
    )

    def load_config(path: Path) -> Loaded:  # for http.listen (the one just read), start, reloads
        return unused.pop() if unused else _load(args, path)

    code = serve(build_daemon(path, settings, load_config))
    if code != 0:
        # A run outlived the grace period; its thread would hold the interpreter open.
        logging.shutdown()
        os._exit(code)
    return code


def _health(args: argparse.Namespace) -> int:
    """One line: what /healthz of the configured http.listen answered."""
    from monitor.cli.health import probe

    health = probe(args.config)
    print(f"featmon health: {health.reason}")
    return 0 if health.ok else 1


def _schema(args: argparse.Namespace) -> int:
    from monitor.cli import schema

    if args.out.exists() and not args.out.is_dir():
        return _refuse("schema", f"expected --out to be a directory, found a file: {args.out}")
    for path in schema.write(args.out):
        print(path)
    return 0


def _run(
    loaded: Loaded, now: datetime | None, record: bool, report: Path | None
) -> tuple[RunResult, Path | None]:
    """One run of everything: recorded in the state database, its report written (to `report`,
    else the configured reports directory)."""
    from monitor.app import build_app
    from monitor.runs.reports import write_run_report
    from monitor.runs.run import run_once

    with build_app(loaded, with_state=record) as app:
        run = run_once(app, now or datetime.now(UTC))
        app.record(run)
        target = report or Path(loaded.config.reports.dir)
        return run, write_run_report(run, target, app.state)


def _print_run(run: RunResult, fmt: str, report: Path | None) -> None:
    from checks.serde import to_json
    from monitor.cli.format import summary_table

    where = str(report) if report is not None else "not written (see the log)"
    if fmt == "json":
        print(json.dumps(to_json(run), indent=2))
        print(f"report: {where}", file=sys.stderr)
        return
    print(summary_table(run))
    print(f"\nHTML report: {where}")


class _Scrubbing(logging.Formatter):
    """Formats a record with `inner`, then masks every secret added so far: the last boundary
    of the log, whatever a message or a traceback holds. Secrets are added when a configuration
    is loaded (and on each reload of the daemon)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner
        self.secrets: Secrets | None = None  # none yet: nothing to mask

    def add(self, secrets: Secrets) -> None:
        self.secrets = secrets if self.secrets is None else self.secrets + secrets

    def scrub(self, text: str) -> str:
        return text if self.secrets is None else self.secrets.scrub(text)

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(self.inner.format(record))


class _JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the fields of `FIELDS` that a
    line was given with `extra=` (a run's id, view or model, status and duration), so that a log search
    can filter on them."""

    FIELDS = ("run_id", "feature_view", "model", "status", "duration_ms")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (name, record.__dict__[name]) for name in self.FIELDS if name in record.__dict__
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _setup_logging(level: str, fmt: str) -> _Scrubbing:
    """The one log handler, on stderr; returns its formatter, to which secrets are added."""
    handler = logging.StreamHandler(sys.stderr)
    inner = (
        _JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    formatter = _Scrubbing(inner)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return formatter


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
