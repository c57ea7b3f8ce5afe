"""The command line: exit codes, the JSON contract, validate, schema, and the installed script."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli.main import main
from monitor.demo import PLANTED
from monitor.demo import store as planted
from monitor.state import StateStore

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
NOW_TEXT = "2026-11-26T06:00:00Z"
REPO = Path(__file__).resolve().parents[1]
RESULT_KEYS = {
    "check", "kind", "feature_view", "feature", "store", "status", "severity", "value",
    "threshold", "sample_size", "details", "labels",
}  # fmt: skip


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("store")
    planted.build(directory, NOW)
    return directory


def config_with(root: Path, store_dir: Path, checks: str) -> Path:
    """A config over the demo store with one check file holding `checks`."""
    (root / "checks").mkdir(exist_ok=True)
    (root / "checks" / "c.yaml").write_text(checks, encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(
        "stores:\n"
        f"  online: {{type: feast-sqlite, path: '{store_dir}/online.db', project: demo}}\n"
        f"  lake: {{type: parquet, root: '{store_dir}/offline'}}\n"
        "checks: checks/*.yaml\n"
        "reports: {dir: reports}\n",
        encoding="utf-8",
    )
    return config


MERCHANTS = """\
feature_views:
  - name: merchant_stats
    entity: merchant_id
    ttl: 2h
    features: {avg_ticket_usd: double, orders_1h: int64, is_high_risk: bool, category: string}
    online: {store: online}
    offline: {store: lake, path: merchant_stats.parquet}
    checks:
"""
USERS = (
    MERCHANTS.replace("merchant_stats", "user_stats")
    .replace("merchant_id", "user_id")
    .replace("ttl: 2h", "ttl: 1d")
    .replace(
        "{avg_ticket_usd: double, orders_1h: int64, is_high_risk: bool, category: string}",
        "{rolling_7d_revenue: float, purchase_count_30d: int64, last_active_days_ago: int64}",
    )
)


@pytest.mark.parametrize(
    ("checks", "code"),
    [
        (MERCHANTS + "      - {kind: freshness, max: 1h}\n", 0),
        (USERS + "      - {kind: schema_drift, target: online, warn: 0, max: 5}\n", 1),
        (
            USERS
            + "      - {kind: coverage, min: 0.95}\n      - {kind: schema_drift, target: online, warn: 0, max: 5}\n",
            2,
        ),
        (
            MERCHANTS.replace("merchant_stats.parquet", "gone.parquet")
            + "      - {kind: freshness, target: offline, max: 1h}\n      - {kind: coverage, min: 0.5}\n",
            3,
        ),
    ],
    ids=["pass", "warn", "fail", "error"],
)
def test_check_exit_code_is_the_worst_status(
    tmp_path: Path, store_dir: Path, checks: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """0 all pass, 1 warnings only, 2 any failure, 3 any error."""
    config = config_with(tmp_path, store_dir, checks)
    assert main(["check", "--config", str(config), "--now", NOW_TEXT]) == code
    assert "HTML report:" in capsys.readouterr().out


def test_an_unreadable_source_is_an_error_result_with_its_reason(
    tmp_path: Path, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing Parquet path errors the checks it feeds, including the coverage population."""
    checks = (
        MERCHANTS.replace("merchant_stats.parquet", "gone.parquet")
        + "      - {kind: freshness, target: offline, max: 1h}\n"
        "      - {kind: coverage, min: 0.5}\n"
    )
    config = config_with(tmp_path, store_dir, checks)
    main(["check", "--config", str(config), "--now", NOW_TEXT, "--format", "json"])
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["status"] for r in results] == ["error", "error"]
    for result in results:
        assert "gone.parquet" in result["details"]["reason"]
        assert result["value"] is None


def test_json_output_follows_the_documented_contract(
    tmp_path: Path, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = USERS + (
        "      - {kind: freshness, max: 1h, severity: P1, labels: {team: growth}}\n"
        "      - {kind: coverage, min: 0.95}\n"
        "      - {kind: null_rate, feature: rolling_7d_revenue, max: 0.01}\n"
    )
    config = config_with(tmp_path, store_dir, checks)
    code = main(["check", "--config", str(config), "--now", NOW_TEXT, "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 2
    assert isinstance(document["run_id"], str)
    assert document["scheduled_at"] == NOW_TEXT
    results = {r["check"]: r for r in document["results"]}
    for result in results.values():
        assert set(result) >= RESULT_KEYS
        assert result["status"] in {"pass", "warn", "fail", "error"}
        assert result["severity"] in {"P1", "P2", "P3", "P4"}
    freshness = results["user_stats.freshness@online"]
    assert {"p50", "p90", "p99", "max"} <= set(freshness["details"])
    assert freshness["threshold"] == {"max": 3600.0, "unit": "seconds"}
    assert freshness["labels"] == {"team": "growth"}
    assert freshness["severity"] == "P1"
    coverage = results["user_stats.coverage@online"]
    assert 0 <= coverage["value"] <= 1
    assert coverage["sample_size"] == 1000
    null_rate = results["user_stats.null_rate.rolling_7d_revenue@online"]
    assert null_rate["feature"] == "rolling_7d_revenue"
    assert null_rate["store"] == "online"


def test_the_report_option_writes_that_file(
    tmp_path: Path, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_with(tmp_path, store_dir, MERCHANTS + "      - {kind: freshness, max: 1h}\n")
    target = tmp_path / "out" / "run.html"
    main(["check", "--config", str(config), "--now", NOW_TEXT, "--report", str(target)])
    assert str(target) in capsys.readouterr().out
    assert target.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html>")


def test_validate_accepts_the_example_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(REPO / "config.example.yaml")]) == 0
    assert "3 feature views, 16 checks" in capsys.readouterr().out


def test_an_invalid_config_exits_3_and_lists_every_problem(
    tmp_path: Path, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = (
        MERCHANTS + "      - {kind: freshness, qantile: p99, max: 1h}\n      - {kind: coverage}\n"
    )
    config = config_with(tmp_path, store_dir, checks)
    assert main(["validate", "--config", str(config)]) == 3
    assert main(["check", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert "2 problems in the configuration" in err
    assert (
        "c.yaml:9: feature_views[0].checks[0].qantile: unknown key 'qantile' (did you mean 'quantile'?)"
        in err
    )
    assert "c.yaml:10: feature_views[0].checks[1]: expected at least one threshold" in err


def test_now_without_a_zone_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong option exits 4 (a usage error), not argparse's 2, which would read as "a failure"."""
    with pytest.raises(SystemExit) as caught:
        main(["check", "--config", str(tmp_path / "c.yaml"), "--now", "2026-11-26T06:00:00"])
    assert caught.value.code == 4
    assert "expected a time with a zone" in capsys.readouterr().err


def test_schema_writes_both_json_schemas(tmp_path: Path) -> None:
    assert main(["schema", "--out", str(tmp_path)]) == 0
    config = json.loads((tmp_path / "config.schema.json").read_text(encoding="utf-8"))
    checks = json.loads((tmp_path / "checks.schema.json").read_text(encoding="utf-8"))
    assert config["additionalProperties"] is False
    assert "stores" in config["properties"]
    assert "feature_views" in checks["properties"]
    kinds = json.dumps(checks)
    for kind in ("freshness", "coverage", "null_rate", "schema_drift"):
        assert f'"const": "{kind}"' in kinds


@pytest.mark.slow
def test_the_installed_script_checks_the_demo_from_the_repository_root(store_dir: Path) -> None:
    """`featmon check --config config.example.yaml` from the root, as the README says."""
    script = Path(sys.executable).with_name("featmon")
    env = {**os.environ, "FEATMON_DEMO_DIR": str(store_dir)}
    done = subprocess.run(
        [str(script), "--log-level", "warning", "check", "--config", "config.example.yaml",
         "--now", NOW_TEXT, "--format", "json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    results = json.loads(done.stdout)["results"]
    assert len(results) == len(PLANTED)
    coverage = next(r for r in results if r["check"] == "user_stats.coverage@online")
    assert coverage["value"] == pytest.approx(0.91)


def test_a_report_that_cannot_be_written_does_not_change_the_exit_code(
    tmp_path: Path, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The results are still printed and the exit code is the checks'."""
    config = config_with(tmp_path, store_dir, MERCHANTS + "      - {kind: freshness, max: 1h}\n")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    code = main(
        ["check", "--config", str(config), "--now", NOW_TEXT, "--report", str(blocker / "r")]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "HTML report: not written (see the log)" in captured.out
    assert "cannot write the HTML report" in captured.err


def test_check_records_each_run_in_the_state_database(
    tmp_path: Path, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs, two records, next to config.yaml by default; --no-state records nothing."""
    config = config_with(tmp_path, store_dir, MERCHANTS + "      - {kind: freshness, max: 1h}\n")
    for _ in range(2):
        assert main(["check", "--config", str(config), "--now", NOW_TEXT]) == 0
    assert main(["check", "--config", str(config), "--now", NOW_TEXT, "--no-state"]) == 0
    capsys.readouterr()
    with StateStore(f"sqlite:///{tmp_path / 'featmon-state.db'}") as state:
        runs = state.runs()
        history = state.history("merchant_stats.freshness@online")
    assert len(runs) == 2
    assert [point.status.value for point in history] == ["pass", "pass"]


def test_an_unreachable_state_database_does_not_change_the_result(
    tmp_path: Path, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_with(tmp_path, store_dir, MERCHANTS + "      - {kind: freshness, max: 1h}\n")
    with config.open("a", encoding="utf-8") as file:
        file.write("state: {url: 'postgresql+psycopg://featmon:s3cret@127.0.0.1:1/none'}\n")
    assert main(["check", "--config", str(config), "--now", NOW_TEXT]) == 0
    err = capsys.readouterr().err
    assert "history is not recorded" in err
    assert "s3cret" not in err


# --- a user's mistake: one line naming the thing, the documented exit code, no traceback --------


def featmon(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`featmon ARGV` as a user runs it, logging warnings and worse."""
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli.main", "--log-level", "warning", *argv],
        cwd=cwd or REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def mistakes(tmp_path: Path, store_dir: Path) -> Iterator[dict[str, tuple[list[str], int, str]]]:
    """Each mistake: the arguments, the exit code the README documents, and what the one line
    of stderr must say (naming the thing)."""
    config = config_with(tmp_path, store_dir, MERCHANTS + "      - {kind: freshness, max: 1h}\n")
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    busy = tmp_path / "busy.yaml"
    busy.write_text(
        config.read_text(encoding="utf-8") + f"http: {{listen: '127.0.0.1:{port}'}}\n",
        encoding="utf-8",
    )
    (tmp_path / "latin1.yaml").write_bytes(b"stores: {}\nchecks: caf\xe9.yaml\n")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    c = str(config)
    yield {
        "busy port": (
            ["run", "--config", str(busy)],
            3,
            f"featmon run: the HTTP sidecar cannot listen on 127.0.0.1:{port}: Address already in use",
        ),
        "schema output is a file": (
            ["schema", "--out", str(blocker)],
            3,
            f"featmon schema: expected --out to be a directory, found a file: {blocker}",
        ),
        "missing config": (
            ["validate", "--config", str(tmp_path / "nope.yaml")],
            3,
            f"{tmp_path}/nope.yaml: cannot read the file: No such file or directory",
        ),
        "config not UTF-8": (
            ["check", "--config", str(tmp_path / "latin1.yaml")],
            3,
            f"{tmp_path}/latin1.yaml: cannot read the file: 'utf-8' codec can't decode byte "
            "0xe9 in position 22: invalid continuation byte",
        ),
        "config is a directory": (
            ["run", "--config", str(tmp_path)],
            3,
            f"{tmp_path}: cannot read the file: Is a directory",
        ),
        "bad --now": (
            ["check", "--config", c, "--now", "yesterday"],
            4,
            "featmon check: argument --now: expected an RFC 3339 time such as "
            "2026-11-26T06:00:00Z, found 'yesterday' (see featmon check --help)",
        ),
        "unknown option": (
            ["validate", "--config", c, "--strict"],
            4,
            "featmon: unrecognized arguments: --strict (see featmon --help)",
        ),
        "unknown --view": (
            ["baseline", "accept", "--config", c, "--view", "nope"],
            3,
            "featmon baseline accept: cannot accept a baseline of 'nope': no such feature view "
            "(views: ['merchant_stats'])",
        ),
        "unwritable report path": (
            ["check", "--config", c, "--now", NOW_TEXT, "--no-state", "--report", f"{blocker}/r"],
            0,  # the checks' own code: a report that cannot be written does not change it
            f"cannot write the HTML report to {blocker}/r: Not a directory",
        ),
        "demo directory unusable": (
            ["demo", "--dir", f"{blocker}/demo"],
            3,
            f"featmon demo: {blocker}/demo: Not a directory",
        ),
        "no workers": (
            ["run", "--config", c, "--workers", "0"],
            4,
            "featmon run: expected --workers of 1 or more, found 0 (see featmon run --help)",
        ),
    }
    held.close()


MISTAKES = [
    "busy port", "schema output is a file", "missing config", "config not UTF-8",
    "config is a directory", "bad --now", "unknown option", "unknown --view",
    "unwritable report path", "demo directory unusable", "no workers",
]  # fmt: skip


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_users_mistake_is_one_line_with_the_documented_exit_code(
    mistake: str, mistakes: dict[str, tuple[list[str], int, str]]
) -> None:
    """No traceback: stderr is one line that names the thing, and the exit code is the README's."""
    argv, code, line = mistakes[mistake]
    done = featmon(*argv)
    assert "Traceback" not in done.stderr + done.stdout
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].endswith(line)  # a log line (the report) has its time and logger first


# --- the first commands: version, the default configuration, one view, list, errors in full ----


def test_version_is_the_installed_one() -> None:
    """`featmon --version` prints the package's version and exits 0."""
    done = featmon("--version")
    assert (done.returncode, done.stdout.strip()) == (0, "featmon 0.1.0")


def test_the_config_defaults_to_featmon_config_then_featmon_yaml(
    tmp_path: Path, store_dir: Path
) -> None:
    """Without --config: $FEATMON_CONFIG, else ./featmon.yaml, else a usage error (exit 4)."""
    config = config_with(tmp_path, store_dir, MERCHANTS + "      - {kind: freshness, max: 1h}\n")
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "FEATMON_CONFIG"}
    run = [sys.executable, "-m", "monitor.cli.main", "--log-level", "warning", "validate"]
    none = subprocess.run(run, cwd=empty, env=env, capture_output=True, text=True, check=False)
    assert none.returncode == 4
    assert none.stderr.strip() == (
        "featmon validate: no configuration: pass --config FILE, set FEATMON_CONFIG, or create "
        "./featmon.yaml (see featmon validate --help)"
    )
    by_env = subprocess.run(
        run, cwd=empty, env={**env, "FEATMON_CONFIG": str(config)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (by_env.returncode, by_env.stdout.startswith(f"{config}: valid")) == (0, True)
    config.rename(tmp_path / "featmon.yaml")
    here = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert (here.returncode, here.stdout.startswith("featmon.yaml: valid")) == (0, True)


def test_check_runs_only_the_views_and_checks_asked_for(
    tmp_path: Path, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--view keeps one view's checks, --check one check; the exit code is theirs alone."""
    checks = (
        MERCHANTS + "      - {kind: freshness, max: 1h}\n"
        + USERS.replace("feature_views:\n", "") + "      - {kind: coverage, min: 0.95}\n"
    )  # fmt: skip
    config = str(config_with(tmp_path, store_dir, checks))
    args = ["check", "--config", config, "--now", NOW_TEXT, "--format", "json", "--no-state"]
    assert main([*args, "--view", "merchant_stats"]) == 0
    merchants = json.loads(capsys.readouterr().out)["results"]
    assert [r["check"] for r in merchants] == ["merchant_stats.freshness@online"]
    assert main([*args, "--check", "user_stats.coverage@online"]) == 2
    users = json.loads(capsys.readouterr().out)["results"]
    assert [r["check"] for r in users] == ["user_stats.coverage@online"]


def test_an_unknown_view_or_check_is_a_usage_error_naming_the_configured_ones(
    tmp_path: Path, store_dir: Path
) -> None:
    """Exit 4, one line, with what is configured."""
    config = str(
        config_with(tmp_path, store_dir, MERCHANTS + "      - {kind: freshness, max: 1h}\n")
    )
    view = featmon("check", "--config", config, "--view", "users")
    assert view.returncode == 4
    assert view.stderr.strip() == (
        "featmon check: no feature view 'users' (views: 'merchant_stats') "
        "(see featmon check --help)"
    )
    check = featmon("check", "--config", config, "--check", "merchant_stats.freshnes@online")
    assert check.returncode == 4
    assert "checks: 'merchant_stats.freshness@online'" in check.stderr


def test_list_shows_stores_views_schedules_next_runs_and_checks(
    tmp_path: Path, store_dir: Path
) -> None:
    """`featmon list` connects to nothing and says what the daemon would run, and when."""
    checks = MERCHANTS.replace("    checks:\n", "    schedule: {every: 10m}\n    checks:\n")
    config = str(config_with(tmp_path, store_dir, checks + "      - {kind: freshness, max: 1h}\n"))
    done = featmon("list", "--config", config, "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["stores"] == [
        {"name": "online", "type": "feast-sqlite"},
        {"name": "lake", "type": "parquet"},
    ]
    (view,) = doc["feature_views"]
    assert (view["name"], view["online"], view["offline"], view["schedule"]) == (
        "merchant_stats", "online", "lake", "every 10m",
    )  # fmt: skip
    next_run = datetime.fromisoformat(view["next_run"])
    assert timedelta(0) <= next_run - datetime.now(UTC) <= timedelta(minutes=10)
    assert doc["checks"][0]["id"] == "merchant_stats.freshness@online"
    text = featmon("list", "--config", config)
    assert text.returncode == 0
    assert "merchant_stats  online  lake     every 10m" in text.stdout


MODELS = """\
models:
  - name: fraud
    features: [merchant_stats:avg_ticket_usd, merchant_stats:orders_1h]
    serving_log: {store: lake, path: logs/fraud}
    schedule: {every: 10m}
    checks:
      - {kind: coverage, min: 0.99}
      - {kind: null_rate, max: 0.01}
"""


def test_list_shows_the_models_with_their_source_schedule_next_run_and_checks(
    tmp_path: Path, store_dir: Path
) -> None:
    """A MODEL table beside the views' (JSON `models`), and the model's checks among the checks."""
    checks = MERCHANTS + "      - {kind: freshness, max: 1h}\n" + MODELS
    config = str(config_with(tmp_path, store_dir, checks))
    done = featmon("list", "--config", config, "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    (model,) = doc["models"]
    assert {k: v for k, v in model.items() if k != "next_run"} == {
        "name": "fraud",
        "file": f"{tmp_path}/checks/c.yaml:11",
        "source": "serving_log",
        "store": "lake",
        "schedule": "every 10m",
        "checks": 3,
    }
    assert (
        timedelta(0)
        <= datetime.fromisoformat(model["next_run"]) - datetime.now(UTC)
        <= (timedelta(minutes=10))
    )
    assert [(c["id"], c.get("model"), c["target"]) for c in doc["checks"][1:]] == [
        ("fraud.coverage", "fraud", "serving_log"),
        ("fraud.null_rate.merchant_stats.avg_ticket_usd", "fraud", "serving_log"),
        ("fraud.null_rate.merchant_stats.orders_1h", "fraud", "serving_log"),
    ]
    text = featmon("list", "--config", config).stdout
    assert "MODEL  SOURCE       STORE  SCHEDULE   NEXT RUN (UTC)" in text
    assert f"fraud  serving_log  lake   every 10m  {model['next_run']}  3" in text


def test_check_model_runs_only_the_named_models_and_view_only_the_views(
    tmp_path: Path, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--model narrows a run to models (repeatable), --view to views; an unknown model is a
    usage error naming the models configured."""
    config = str(
        config_with(
            tmp_path, store_dir, MERCHANTS + "      - {kind: freshness, max: 1h}\n" + MODELS
        )
    )
    args = ["check", "--config", config, "--now", NOW_TEXT, "--format", "json", "--no-state"]
    assert main([*args, "--model", "fraud"]) == 3  # the serving log cannot be measured
    found = json.loads(capsys.readouterr().out)["results"]
    assert {(r["model"], r["feature_view"], r["status"]) for r in found} == {
        ("fraud", None, "error")
    }
    assert len(found) == 3
    assert main([*args, "--view", "merchant_stats"]) == 0
    views = json.loads(capsys.readouterr().out)["results"]
    assert [(r["check"], "model" in r) for r in views] == [
        ("merchant_stats.freshness@online", False)
    ]
    unknown = featmon("check", "--config", config, "--model", "frad")
    assert unknown.returncode == 4
    assert unknown.stderr.strip() == (
        "featmon check: no model 'frad' (models: 'fraud') (see featmon check --help)"
    )


def test_an_errors_reason_is_printed_whole_under_its_row(
    tmp_path: Path, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text table never cuts the cause of an error: it follows the row, wrapped."""
    gone = "a_directory_name_long_enough_to_push_the_reason_past_sixty_characters/gone.parquet"
    checks = (
        MERCHANTS.replace("merchant_stats.parquet", gone)
        + "      - {kind: freshness, target: offline, max: 1h}\n"
    )
    config = config_with(tmp_path, store_dir, checks)
    assert main(["check", "--config", str(config), "--now", NOW_TEXT, "--no-state"]) == 3
    out = capsys.readouterr().out
    reason_lines = [line.strip() for line in out.splitlines() if line.startswith(" " * 8)]
    assert reason_lines[0].startswith("error: ")
    assert gone in " ".join(reason_lines)  # long words are never broken
