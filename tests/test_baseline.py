"""Schema drift against a baseline kept in the state database (`baseline: true`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from checks.model import SchemaDriftCheck
from checks.result import CheckResult, SchemaDriftDetails, Status
from monitor.app import build_app
from monitor.cli.main import main
from monitor.loader import load
from monitor.runs.run import run_once
from monitor.state import StateStore
from tests.analytics_fixtures import config, write_offline, write_online

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
CHECK = "      - {kind: schema_drift, baseline: true, max: 0}"


@pytest.fixture
def setup(tmp_path: Path) -> Path:
    """A view whose offline table is a SQLite file; returns config.yaml."""
    write_online(tmp_path / "online.db", [(1, NOW, 1.0, "red")])
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'offline.db'}")
    write_offline(engine, [(1, NOW, 1.0, "red")])
    engine.dispose()
    store = f"{{type: sql, url: 'sqlite:///{tmp_path / 'offline.db'}'}}"
    return config(tmp_path, store, "table: user_stats", CHECK, tmp_path / "state.db")


def drift(config_path: Path) -> CheckResult:
    with build_app(load(config_path, {})) as app:
        (result,) = run_once(app, NOW).results
    return result


def add_column(config_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{config_path.parent / 'offline.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE user_stats ADD COLUMN score INTEGER")
    engine.dispose()


def test_the_first_run_captures_the_baseline_and_passes(setup: Path) -> None:
    result = drift(setup)
    assert isinstance(result.details, SchemaDriftDetails)
    assert result.status is Status.PASS
    assert result.details.baseline_captured is True
    with StateStore(f"sqlite:///{setup.parent / 'state.db'}") as state:
        kept = state.baseline("user_stats", "warehouse")
    assert kept is not None
    assert [c.name for c in kept.columns] == ["user_id", "event_timestamp", "x", "colour"]
    assert kept.accepted_by == "featmon (first run)"


def test_a_column_added_after_the_baseline_fails_the_next_run(setup: Path) -> None:
    drift(setup)
    add_column(setup)
    result = drift(setup)
    assert isinstance(result.details, SchemaDriftDetails)
    assert result.details.added == ("score",)
    assert result.details.baseline_captured is False
    assert result.value == 1.0
    assert result.status is Status.FAIL


def test_accepting_the_new_schema_makes_the_check_pass_again(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drift(setup)
    add_column(setup)
    code = main(
        ["baseline", "accept", "--config", str(setup), "--view", "user_stats",
         "--comment", "score is new"]
    )  # fmt: skip
    assert code == 0
    assert "accepted the schema of user_stats on warehouse" in capsys.readouterr().out
    result = drift(setup)
    assert result.status is Status.PASS
    with StateStore(f"sqlite:///{setup.parent / 'state.db'}") as state:
        kept = state.baseline("user_stats", "warehouse")
    assert kept is not None
    assert kept.comment == "score is new"
    assert "score" in [c.name for c in kept.columns]


def test_accepting_for_another_store_than_the_views_is_refused(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["baseline", "accept", "--config", str(setup), "--view", "user_stats", "--store", "x"]
    )
    assert code == 3
    assert "expected --store 'warehouse'" in capsys.readouterr().err


def test_a_retyped_column_is_reported_by_its_family(setup: Path) -> None:
    """x was a float when the baseline was captured; it is text now."""
    drift(setup)
    engine = sa.create_engine(f"sqlite:///{setup.parent / 'offline.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE user_stats DROP COLUMN x")
        conn.exec_driver_sql("ALTER TABLE user_stats ADD COLUMN x TEXT")
    engine.dispose()
    result = drift(setup)
    assert isinstance(result.details, SchemaDriftDetails)
    assert [(r.column, r.expected, r.found) for r in result.details.retyped] == [
        ("x", "float", "TEXT")
    ]


def test_a_baseline_check_on_the_online_store_is_refused() -> None:
    with pytest.raises(ValueError, match="expected target `offline` with `baseline: true`"):
        SchemaDriftCheck.model_validate(
            {"kind": "schema_drift", "baseline": True, "target": "online", "max": 0}
        )
