"""One way to build a run: `featmon check` (`run_once`) runs each view as the daemon does
(`run_view`), through the same `view_results`, and sums them in one report."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checks.result import Status
from monitor.app import App, build_app
from monitor.daemon.observer import NoObserver
from monitor.demo import example_config
from monitor.demo import store as planted
from monitor.loader import load
from monitor.runs.run import run_model, run_once, run_view

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("run-demo")
    planted.build(directory, NOW)
    return directory


def demo_app(directory: Path) -> App:
    return build_app(load(example_config(), {"FEATMON_DEMO_DIR": str(directory)}), False)


def test_check_runs_each_view_as_the_daemon_does_and_sums_them(demo_dir: Path) -> None:
    """The report of `featmon check` holds, view by view in declared order, then model by
    model, the results the daemon's run of that view or model gives at the same scheduled
    time."""
    with demo_app(demo_dir) as app:
        summed = run_once(app, NOW)
        per_view = [run_view(app, v, NOW, NoObserver())[0] for v in app.loaded.views]
        per_model = [run_model(app, m, NOW, NoObserver())[0] for m in app.loaded.models]
    assert len(per_view) > 1
    assert len(per_model) == 1
    runs = [*per_view, *per_model]
    assert list(summed.results) == [r for run in runs for r in run.results]


def test_check_records_a_view_whose_probe_fails_outside_its_guards_as_errors(
    demo_dir: Path,
) -> None:
    """A bug while probing one view (here the probe callback raises for it) gives that view's
    checks `error` results in `featmon check`, as in the daemon, and the other views still run;
    it used to end the whole check with the exception."""
    with demo_app(demo_dir) as app:
        broken = app.loaded.views[0].view.name

        def on_probe(view: str, _store: str, _seconds: float, _failed: bool) -> None:
            if view == broken:
                raise RuntimeError("a bug in the probe callback")

        stores = dataclasses.replace(app.stores, on_probe=on_probe)
        run = run_once(dataclasses.replace(app, stores=stores), NOW)
    mine = [r for r in run.results if r.feature_view == broken]
    others = [r for r in run.results if r.feature_view != broken]
    assert mine
    assert all(r.status is Status.ERROR for r in mine)
    assert all("a bug in the probe callback" in repr(r.details) for r in mine)
    assert any(r.status is not Status.ERROR for r in others)
