"""Soda: one featmon result per check of a Soda Core v4 contract (see `checks.soda_contract`).

The monitor verifies the contract on the view's offline store (`monitor.stores.soda`) and hands
over a `SodaObservation`: Soda's outcome of each of its checks, keyed by Soda's relative path.
Evaluation here is pure and maps one outcome to one result:

    Soda outcome     featmon status
    PASSED           pass
    WARN             warn
    FAILED           fail
    NOT_EVALUATED    error   (Soda could not measure it; its error messages are the reason)
    EXCLUDED         error   (an inactive scope: featmon never lets a check vanish silently)
    no result        error

The value is the one Soda held against the threshold (`threshold_value`: a count, a percent,
an average, ...), in unit `number`; the threshold is Soda's, as text in the details and, where
it is a bound or a range, as a featmon `Threshold` (fail bounds, warn bounds from Soda's
`additional` warn threshold).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType

from checks.kinds.base import Features, Judge, Kind, build, error, narrow
from checks.model import SodaCheck
from checks.observation import (
    ProbeFailure,
    SodaBounds,
    SodaObservation,
    SodaOutcome,
)
from checks.planned import PlannedCheck
from checks.result import CheckResult, SodaDetails, Status, Threshold
from checks.soda_contract import ContractOutline, SodaCheckRef, keys_of, outline
from checks.soda_contract import problems as contract_problems

_STATUS: Mapping[str, Status] = {"passed": Status.PASS, "warn": Status.WARN, "failed": Status.FAIL}


def threshold(check: SodaCheck) -> Threshold:  # noqa: ARG001 - every kind's threshold takes its check; soda's thresholds live in its contract
    """Before Soda has run, a Soda check's threshold is unknown: an empty one."""
    return Threshold("max", None, None, "number")


@functools.lru_cache(maxsize=256)
def _outline(text: str) -> ContractOutline:
    return outline(text)


def reference(planned: PlannedCheck) -> SodaCheckRef | None:
    """The contract check that `planned` stands for (its `feature` is the check's key)."""
    check = narrow(planned, SodaCheck)
    if check.contract is None:
        return None
    return next((r for r in _outline(check.contract).checks if r.key == planned.feature), None)


def evaluate(planned: PlannedCheck, observation: object, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    """One Soda check's outcome as a featmon result; a probe failure (the contract could not
    be verified at all) is an `error` result under the Soda check's identity."""
    check = narrow(planned, SodaCheck)
    ref = reference(planned)
    if ref is None:
        return error(planned, threshold(check), f"the contract has no check {planned.feature!r}")
    if isinstance(observation, ProbeFailure):
        return _labelled(error(planned, threshold(check), observation.reason), planned, ref)
    if not isinstance(observation, SodaObservation):
        reason = "a Soda check is measured by Soda, not by featmon's aggregate query"
        return _labelled(error(planned, threshold(check), reason), planned, ref)
    found = observation.outcomes.get(ref.relative_path)
    if found is None:
        reason = f"Soda reported no result for {ref.relative_path}"
        if observation.errors:
            reason += f": {'; '.join(observation.errors)}"
        return _labelled(error(planned, threshold(check), reason), planned, ref)
    limit = _threshold(found)
    details = SodaDetails(
        soda_check=ref.relative_path,
        name=found.name or ref.name,
        type=ref.type,
        column=ref.column,
        outcome=found.outcome,
        threshold=_text(found),
        diagnostics=found.diagnostics,
        dataset=observation.dataset,
        contract_line=found.line or ref.line,
        errors=observation.errors if found.outcome == "not_evaluated" else (),
        soda_version=observation.soda_version,
    )
    status = _STATUS.get(found.outcome, Status.ERROR)
    return _labelled(build(planned, limit, found.value, details, status=status), planned, ref)


def _labelled(result: CheckResult, planned: PlannedCheck, ref: SodaCheckRef) -> CheckResult:
    """The result under the Soda check's column, labelled with its identity in the contract."""
    labels = {**planned.labels, "soda_check": ref.relative_path}
    return replace(result, feature=ref.column, labels=MappingProxyType(labels))


def _text(found: SodaOutcome) -> str:
    fail = found.fail.text() if found.fail is not None else "no threshold"
    return f"{fail} (warn: {found.warn.text()})" if found.warn is not None else fail


def _threshold(found: SodaOutcome) -> Threshold:
    """Soda's bounds as a featmon threshold: one-sided max or min, or two-sided."""
    fail, warn = found.fail or SodaBounds(), found.warn or SodaBounds()
    uppers = (fail.upper, warn.upper)
    lowers = (fail.lower, warn.lower)
    if all(u is None for u in uppers) and any(low is not None for low in lowers):
        return Threshold("min", fail.lower, warn.lower, "number")
    return Threshold(
        "max", fail.upper, warn.upper, "number", fail_min=fail.lower, warn_min=warn.lower
    )


KIND = Kind(
    name="soda",
    model=SodaCheck,
    targets=("offline",),
    threshold=threshold,
    judges=(Judge(object, evaluate),),  # every observation: a failure too, under its identity
    details=SodaDetails,
    measured_by="contract",
    # one planned check per check of the contract, its key in place of a feature
    per_feature=Features(lambda check, _: tuple(keys_of(check)), lambda _: True),
    problems=lambda check, view, path: contract_problems(view, check, path),
)
