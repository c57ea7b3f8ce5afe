"""What every `featmon` command shares about its command line: the exit codes, the usage error
and where the configuration is found.

| exit | meaning |
|---|---|
| 0 | every check passed (or the command did what it was asked) |
| 1 | warnings, no failure |
| 2 | a check failed |
| 3 | an error: a probe could not measure, the configuration is invalid, or something the command needs cannot be used (a store, the state database, a port, a path) |
| 4 | a usage error: an unknown option, a value that does not parse, a view, model or check that is not configured, no configuration found |

Soda's convention for 0-3, so a CI gate reads `featmon check` as it reads `soda scan`; 4 so
that a wrong command line never reads as "a check failed".
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

EXIT_PASS, EXIT_WARN, EXIT_FAIL, EXIT_INVALID, EXIT_USAGE = 0, 1, 2, 3, 4

CONFIG_ENV = "FEATMON_CONFIG"
DEFAULT_CONFIG = Path("featmon.yaml")


class UsageError(Exception):
    """The command line asks for something that is not there (exit 4)."""


def add_config(parser: argparse.ArgumentParser) -> None:
    """`--config FILE`, defaulting to $FEATMON_CONFIG, else ./featmon.yaml."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"path to config.yaml (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG})",
    )


def config_path(given: Path | None) -> Path:
    """The configuration a command reads: `--config`, $FEATMON_CONFIG, or ./featmon.yaml when
    it exists. Raises `UsageError` when none is given and there is no ./featmon.yaml."""
    if given is not None:
        return given
    from_env = os.environ.get(CONFIG_ENV, "")
    if from_env:
        return Path(from_env)
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    raise UsageError(
        f"no configuration: pass --config FILE, set {CONFIG_ENV}, or create ./{DEFAULT_CONFIG}"
    )
