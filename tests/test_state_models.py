"""Models in the state database (schema version 6), on SQLite and PostgreSQL: a model's results
of every kind read back as the `CheckResult` that was written, with `model` set and
`feature_view` None; a model's run names its model; the results filter, history and the last
run of each subject know models; a database of version 5 upgrades with its runs intact."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
import sqlalchemy as sa

from checks.observation import Ages, FeatureMisses, ModelObservation, ViewMisses
from checks.result import JSON, CheckResult, RunResult, Status
from checks.serde import to_object
from checks.served import Model, plan_model, resolve
from checks.served_judge import error, judge
from monitor.state import MIGRATIONS, StateStore
from monitor.state.rows import latest_rows, result_rows, run_row
from monitor.state.schema import latest_results, results, runs
from tests.builders import make_view
from tests.test_state import a_run, freshness, null_rate

pytestmark = pytest.mark.every_state_backend  # tests/conftest.py: SQLite and PostgreSQL

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SOURCES = {
    "serving_log": {"store": "lake", "path": "logs/fraud", "window": "1h"},
    "requests": {"store": "lake", "query": "SELECT user_id FROM recent_requests"},
}
CHECKS = [
    {"kind": "coverage", "min": 0.95, "warn": 0.99, "severity": "P1"},
    {"kind": "freshness", "max": "1h", "labels": {"tier": "gold"}},
    {"kind": "freshness", "over": "requests", "quantile": "p90", "max": "2h"},
    {"kind": "null_rate", "max": 0.01},
]


def model_results(source: str) -> tuple[CheckResult, ...]:
    """The results of model `fraud` over `user_stats` judged from one observation of `source`:
    coverage, freshness over values and over requests, a null rate per feature, and an error."""
    model = Model.model_validate(
        {
            "name": "fraud",
            "features": ["user_stats:revenue", "user_stats:purchases"],
            "owner": "risk-team",
            source: SOURCES[source],
            "checks": CHECKS,
        }
    )
    served, problems = resolve(model, {"user_stats": make_view()})
    assert served is not None, problems
    sampled = source == "requests"
    observation = ModelObservation(
        source="requests" if sampled else "serving_log",
        store="lake",
        requests=200,
        covered=182,
        views={
            "user_stats": ViewMisses(
                uncovered=18,
                only=18,
                reasons=MappingProxyType({"null": 5, "stale": 14}),
                ages=Ages(380, 30.0, 600.5, 3000.25, 7200.0),
            )
        },
        features={
            "user_stats:revenue": FeatureMisses(null=5, stale=10),
            "user_stats:purchases": FeatureMisses(absent=2, stale=4),
        },
        value_ages=Ages(380, 30.0, 600.5, 3000.25, 7200.0),
        request_ages=Ages(196, 45.0, 900.0, 3600.0, 7200.0),
        since=None if sampled else T0 - timedelta(hours=1),
        until=None if sampled else T0,
        status_disagreements=None if sampled else 3,
        asked=250 if sampled else None,
        population="query" if sampled else None,
    )
    planned = plan_model(served, ("models", 0))
    judged = [judge(p, observation) for p in planned]
    return (*judged, error(planned[0], "store 'lake': the serving log logs/fraud was not found"))


@pytest.mark.parametrize("source", list(SOURCES))
def test_a_models_run_reads_back_as_the_results_that_were_written(
    state: StateStore, source: str
) -> None:
    written = a_run("m1", T0, *model_results(source))
    assert {r.kind for r in written.results} == {"coverage", "freshness", "null_rate"}
    assert {r.status for r in written.results} >= {Status.PASS, Status.FAIL, Status.ERROR}
    state.record_run(written)
    assert state.recorded_run("m1") == written
    stored = state.results(run_id="m1")
    assert [(s.feature_view, s.model, s.subject) for s in stored] == [
        (None, "fraud", "model:fraud")
    ] * len(written.results)
    frame: dict[str, JSON] = {"run_id": "m1", "scheduled_at": "2024-06-01T12:00:00Z"}
    assert [s.as_json() for s in stored] == [frame | to_object(r) for r in written.results]


def test_a_models_run_names_its_model_and_a_views_run_its_view(state: StateStore) -> None:
    state.record_run(a_run("m1", T0, *model_results("serving_log")))
    state.record_run(a_run("v1", T0, freshness(), null_rate()))
    state.record_run(a_run("both", T0, freshness(), *model_results("serving_log")))
    found = {run.run_id: (run.feature_view, run.model, run.subject) for run in state.runs()}
    assert found == {
        "m1": (None, "fraud", "model:fraud"),
        "v1": ("user_stats", None, "user_stats"),
        "both": (None, None, None),
    }
    model_run, view_run = state.run("m1"), state.run("v1")
    assert model_run is not None
    assert view_run is not None
    assert model_run.as_json()["model"] == "fraud"
    assert "model" not in view_run.as_json()  # a view's run keeps its shape


def test_results_filter_by_model_or_view_and_history_follows_a_models_check(
    state: StateStore,
) -> None:
    for minute in range(3):
        at = T0 + minute * MINUTE
        model = [replace(r, value=0.9 + minute / 100) for r in model_results("serving_log")[:1]]
        state.record_run(a_run(f"m{minute}", at, *model))
        state.record_run(a_run(f"v{minute}", at, freshness()))
    coverage = "fraud.coverage"
    assert [(r.run_id, r.check) for r in state.results(model="fraud")] == [
        ("m2", coverage),
        ("m1", coverage),
        ("m0", coverage),
    ]
    assert {r.run_id for r in state.results(view="user_stats")} == {"v0", "v1", "v2"}
    assert state.results(model="user_stats") == []
    assert state.results(view="fraud") == []
    assert [(p.run_id, p.value) for p in state.history(coverage)] == [
        ("m2", 0.92),
        ("m1", 0.91),
        ("m0", 0.9),
    ]


def test_the_last_run_of_each_subject_tells_models_from_views(state: StateStore) -> None:
    state.record_run(a_run("v1", T0, freshness()))
    state.record_run(a_run("m1", T0 + MINUTE, *model_results("requests")))
    state.record_run(a_run("m0", T0, *model_results("requests")))
    assert state.last_run_by_subject() == {"user_stats": T0, "model:fraud": T0 + MINUTE}
    latest = {r.check: r for r in state.latest_by_check()}
    assert latest["fraud.coverage"].run_id == "m1"
    assert latest["fraud.coverage"].subject == "model:fraud"


def test_a_version_5_database_upgrades_with_its_runs_and_then_takes_models(
    state_url: str,
) -> None:
    """Migration 6 adds the columns to tables full of runs that version 5 wrote: those read
    back unchanged (no model), and a model's run is recorded after."""
    old = a_run("v1", T0, freshness(), freshness(4000.0, Status.FAIL, "user_stats.f2@online"))
    with StateStore(state_url, migrations=MIGRATIONS[:5]) as v5:
        assert v5.migrate() == [1, 2, 3, 4, 5]
    engine = sa.create_engine(state_url)
    try:
        with engine.begin() as conn:  # the rows as version 5 wrote them: no `model` column
            conn.execute(sa.insert(runs), [_v5(run_row(old, recorded_at=T0))])
            conn.execute(sa.insert(results), [_v5(row) for row in result_rows(old)])
            conn.execute(sa.insert(latest_results), latest_rows(old))
    finally:
        engine.dispose()
    with StateStore(state_url) as v6:
        assert v6.migrate() == [6]
        assert v6.recorded_run("v1") == old
        stored = v6.run("v1")
        assert stored is not None
        assert (stored.feature_view, stored.model) == ("user_stats", None)
        model = a_run("m1", T0 + MINUTE, *model_results("serving_log"))
        v6.record_run(model)
        assert v6.recorded_run("m1") == model
        assert v6.last_run_by_subject() == {"user_stats": T0, "model:fraud": T0 + MINUTE}


def _v5(row: dict[str, object]) -> dict[str, object]:
    return {name: value for name, value in row.items() if name != "model"}


def test_a_run_the_state_database_gives_back_is_the_run_as_recorded(state: StateStore) -> None:
    """A model's run and a view's, recorded together as `featmon check` does, read back whole."""
    run = RunResult("r1", T0, T0, T0 + MINUTE, (freshness(), *model_results("requests")))
    state.record_run(run)
    assert state.recorded_run("r1") == run
