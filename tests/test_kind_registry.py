"""The registry of check kinds: one `Kind` per module of `checks.kinds`, listed once in
`KINDS`, found by name through `kind_of`, and named by string in as few files as possible."""

from __future__ import annotations

import re
import typing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checks.errors import UnknownKind
from checks.evaluate import evaluate, threshold
from checks.kinds import KINDS, kind_of
from checks.model import AnyCheck, FreshnessCheck
from checks.observation import ProbeFailure
from checks.plan import PlannedCheck, plan_view
from tests.builders import make_view

ROOT = Path(__file__).resolve().parent.parent
AT = datetime(2026, 1, 1, tzinfo=UTC)

# The files outside checks/kinds/ that name a kind by its string (the `kind: Literal[...]`
# discriminators of checks/model.py aside). A new kind must not add to them: a file added here
# is a new place every kind has to be known in.
NAMING_FILES = {
    "monitor/runs/analytics.py",  # the skew checks it fetches offline rows for
    "monitor/feast/views.py",  # the checks `featmon init --from-feast` writes for a view
    "monitor/feast/models.py",  # the checks of the models it writes
    "monitor/stores/soda.py",  # the Soda checks whose contracts it verifies
}

# The files outside checks/kinds/ that test a check's model class (`isinstance(check,
# NullRateCheck)`): each is a place that knows a kind apart from its module. Held like the set
# above: a kind's behaviour belongs on its `Kind`, where planning and evaluation ask for it
# (`measured_by` says which checks wait for the run's results or verify a contract, and
# `KIND.narrow` of the kind's module gives the typed check where its fields are read).
ISINSTANCE_FILES = {
    # Measures what the drift, baseline and row-count checks compare from their own fields (the
    # windows and sample size, `baseline`, `change.against`): it picks those checks out by model.
    "monitor/runs/analytics.py",
}

# `isinstance(` followed, within its parentheses, by the name of a kind's model class.
MODEL_TEST = re.compile(
    r"isinstance\([^)]*\b(" + "|".join(kind.model.__name__ for kind in KINDS) + r")\b"
)


def _checks() -> tuple[type[AnyCheck], ...]:
    return typing.get_args(AnyCheck)


def test_an_unknown_kind_is_refused_naming_the_known_ones() -> None:
    """`kind_of` raises for a name no module declares, and the message lists every kind."""
    with pytest.raises(UnknownKind, match="found 'freshnes'") as raised:
        kind_of("freshnes")
    assert raised.value.known == tuple(kind.name for kind in KINDS)


def test_the_threshold_of_an_unknown_kind_raises_instead_of_reading_it_as_a_range() -> None:
    """A check whose kind no module declares has no threshold (it used to fall through to range)."""
    view = make_view([{"kind": "freshness", "max": "1h"}])
    planned = plan_view(view)[0]
    bogus = FreshnessCheck.model_construct(**{**planned.check.model_dump(), "kind": "bogus"})
    unknown = PlannedCheck(**{**planned.__dict__, "check": bogus})
    with pytest.raises(UnknownKind):
        threshold(unknown)
    failure = ProbeFailure("redis_prod", "user_stats", "down")
    with pytest.raises(UnknownKind):
        evaluate(unknown, failure, AT)


def test_every_check_model_has_exactly_one_kind_and_back() -> None:
    """The kinds of `KINDS` are the discriminators of the check-file model, each once, and each
    kind judges the model whose discriminator is its name."""
    names = [kind.name for kind in KINDS]
    assert len(names) == len(set(names))
    literals = {typing.get_args(m.model_fields["kind"].annotation)[0]: m for m in _checks()}
    assert {kind.name: kind.model for kind in KINDS} == literals


def test_a_kind_measured_on_one_store_only_prefers_that_store() -> None:
    """A model that refuses the other target (`only`) and its kind agree on the store."""
    for kind in KINDS:
        if kind.model.only is not None:
            store = kind.model.only[0]
            check = kind.model.model_construct(kind=kind.name, target=None)
            assert kind.targets_of(check) == (store,), kind.name


def test_each_details_type_belongs_to_one_kind() -> None:
    """The report finds a result's kind by its details type: no two kinds share one."""
    types = [kind.details for kind in KINDS]
    assert len(types) == len(set(types))


def test_the_exported_gauges_have_one_owner_each() -> None:
    """No two kinds declare a gauge of one name (Prometheus rejects a family exported twice)."""
    names = [gauge.name for kind in KINDS for gauge in kind.exported]
    assert len(names) == len(set(names))


def test_the_files_that_name_a_kind_are_the_known_ones() -> None:
    """Outside checks/kinds/, only the listed files spell a kind's name as a string."""
    pattern = re.compile("[\"'](" + "|".join(kind.name for kind in KINDS) + ")[\"']")
    found = set()
    for package in ("alerts", "checks", "monitor"):
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith("checks/kinds/"):
                continue
            lines = path.read_text(encoding="utf-8").splitlines()
            if any(pattern.search(line) and "kind: Literal[" not in line for line in lines):
                found.add(relative)
    assert found == NAMING_FILES


def _sources() -> dict[str, str]:
    """The text of every module outside checks/kinds/, by its path from the repository root."""
    out = {}
    for package in ("alerts", "checks", "monitor"):
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith("checks/kinds/"):
                out[relative] = path.read_text(encoding="utf-8")
    return out


def test_the_files_that_test_a_check_model_class_are_the_known_ones() -> None:
    """Outside checks/kinds/, only the listed files test a check against a kind's model class
    with `isinstance` (the model definitions of checks/model.py test none)."""
    found = {path for path, text in _sources().items() if MODEL_TEST.search(text)}
    assert found == ISINSTANCE_FILES


def test_the_isinstance_pattern_sees_a_union_and_a_tuple_of_models() -> None:
    """The scan above finds a model class wherever it stands in the tested types."""
    assert MODEL_TEST.search("isinstance(check, CoverageCheck | SkewCheck)")
    assert MODEL_TEST.search("isinstance(p.check, (FreshnessCheck, RangeCheck))")
    assert not MODEL_TEST.search("isinstance(check, CheckBase)")
