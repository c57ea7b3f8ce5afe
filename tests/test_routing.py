"""The routing tree (Alertmanager's matching, inheritance and defaults) and the grouper
(group_wait, group_interval, one notification per receiver for a failing store)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.lifecycle import AlertingConfig, advance
from alerts.model import AlertEvent, AlertState
from alerts.routing import (
    GroupState,
    RootRouteConfig,
    Routed,
    RoutingTree,
    default_route,
    group,
    receiver_problems,
)
from checks.result import CheckResult, ErrorDetails, RunResult, Status, Threshold

AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
RECEIVERS = {"oncall": "pagerduty", "team": "slack", "audit": "file"}


def tree(route: Mapping[str, object] | None = None) -> RoutingTree:
    config = None if route is None else RootRouteConfig.model_validate(route)
    return RoutingTree.from_config(config, RECEIVERS)


def receivers(routing: RoutingTree, **labels: str) -> list[str]:
    return [match.receiver for match in routing.route(labels)]


def alert(
    check: str,
    state: AlertState = AlertState.FIRING,
    store: str = "redis_prod",
    severity: str = "P1",
) -> AlertEvent:
    return AlertEvent(
        labels=MappingProxyType(
            {
                "alertname": "featmon_check_failed",
                "check": check,
                "store": store,
                "severity": severity,
            }
        ),
        annotations=MappingProxyType({"summary": check}),
        state=state,
        starts_at=AT,
        ends_at=None if state is AlertState.FIRING else AT,
        severity=severity,
    )


# --- the tree ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("P1", ["oncall", "team", "audit"]),
        ("P2", ["team", "audit"]),
        ("P3", ["team", "audit"]),
        ("P4", []),
    ],
)
def test_without_a_route_receivers_are_chosen_by_type_and_severity(
    severity: str, expected: list[str]
) -> None:
    assert receivers(tree(), severity=severity, store="redis_prod") == expected


def test_without_receivers_the_default_tree_is_report_only() -> None:
    assert RoutingTree.from_config(None, {}).route({"severity": "P1"}) == []


def test_the_default_tree_is_a_report_only_root_with_continue_children() -> None:
    route = default_route({"oncall": "pagerduty"})
    assert route.receiver is None
    assert [(r.receiver, r.severity, r.continue_) for r in route.routes] == [
        ("oncall", ("P1",), True)
    ]


def test_the_first_matching_child_takes_the_alert_and_the_search_stops() -> None:
    routing = tree(
        {
            "receiver": "team",
            "routes": [
                {"match": {"store": "redis_prod"}, "receiver": "oncall"},
                {"match": {"store": "redis_prod"}, "receiver": "audit"},
            ],
        }
    )
    assert receivers(routing, store="redis_prod") == ["oncall"]


def test_continue_keeps_looking_at_later_siblings() -> None:
    routing = tree(
        {
            "receiver": "team",
            "routes": [
                {"match": {"store": "redis_prod"}, "receiver": "oncall", "continue": True},
                {"match": {"store": "redis_prod"}, "receiver": "audit"},
            ],
        }
    )
    assert receivers(routing, store="redis_prod") == ["oncall", "audit"]


def test_an_alert_no_child_matches_goes_to_the_parent() -> None:
    routing = tree(
        {"receiver": "team", "routes": [{"match": {"team": "ml"}, "receiver": "oncall"}]}
    )
    assert receivers(routing, team="growth") == ["team"]


def test_a_regex_must_match_the_whole_value() -> None:
    routing = tree({"routes": [{"match_re": {"store": "redis"}, "receiver": "oncall"}]})
    assert receivers(routing, store="redis_prod") == []
    assert receivers(routing, store="redis") == ["oncall"]


def test_an_alternation_regex_is_anchored_as_a_whole() -> None:
    routing = tree({"routes": [{"match_re": {"store": "redis|warehouse"}, "receiver": "oncall"}]})
    assert receivers(routing, store="redis_prod") == []
    assert receivers(routing, store="warehouse") == ["oncall"]


def test_severity_matches_any_listed_severity() -> None:
    routing = tree({"routes": [{"severity": ["P1", "P2"], "receiver": "oncall"}]})
    assert [receivers(routing, severity=s) for s in ("P1", "P2", "P3")] == [
        ["oncall"],
        ["oncall"],
        [],
    ]


def test_matchers_select_with_negation_as_in_alertmanager() -> None:
    routing = tree(
        {"routes": [{"matchers": ['store=~"redis.*"', 'team!="ml"'], "receiver": "oncall"}]}
    )
    assert receivers(routing, store="redis_prod") == ["oncall"]
    assert receivers(routing, store="redis_prod", team="ml") == []


def test_a_missing_label_reads_as_empty() -> None:
    routing = tree({"routes": [{"match": {"team": ""}, "receiver": "oncall"}]})
    assert receivers(routing, store="redis_prod") == ["oncall"]


def test_a_child_inherits_its_parents_receiver_and_grouping() -> None:
    routing = tree(
        {
            "receiver": "team",
            "group_by": ["feature_view"],
            "group_wait": "10s",
            "routes": [{"match": {"store": "redis_prod"}}],
        }
    )
    (match,) = routing.route({"store": "redis_prod", "feature_view": "user_stats"})
    assert (match.receiver, match.route, match.group_wait) == (
        "team",
        "route.routes[0]",
        timedelta(seconds=10),
    )
    assert match.group_key == 'route.routes[0]{feature_view="user_stats"}'


def test_receiver_null_on_a_child_means_report_only() -> None:
    routing = tree({"receiver": "team", "routes": [{"severity": ["P4"], "receiver": None}]})
    assert receivers(routing, severity="P4") == []
    assert receivers(routing, severity="P3") == ["team"]


def test_grouping_defaults_to_the_store_with_30s_wait_and_5m_interval() -> None:
    (match, *_) = tree().route({"severity": "P1", "store": "redis_prod", "check": "c"})
    assert dict(match.group_labels) == {"store": "redis_prod"}
    assert (match.group_wait, match.group_interval) == (timedelta(seconds=30), timedelta(minutes=5))


def test_group_by_ellipsis_groups_by_every_label() -> None:
    routing = tree({"receiver": "team", "group_by": ["..."]})
    (match,) = routing.route({"check": "c", "store": "s"})
    assert match.group_key == 'route{check="c",store="s"}'


def test_the_shortest_repeat_interval_of_the_routes_taking_an_alert_wins() -> None:
    routing = tree(
        {
            "receiver": "team",
            "repeat_interval": "4h",
            "routes": [
                {
                    "severity": ["P1"],
                    "receiver": "oncall",
                    "repeat_interval": "1h",
                    "continue": True,
                },
                {"severity": ["P1"], "receiver": "audit"},
            ],
        }
    )
    assert routing.repeat_interval({"severity": "P1"}) == timedelta(hours=1)
    assert routing.repeat_interval({"severity": "P2"}) == timedelta(hours=4)
    assert tree().repeat_interval({"severity": "P1"}) is None  # the lifecycle's default applies


LABEL = st.sampled_from(["store", "severity", "team", "check"])
VALUE = st.sampled_from(["redis_prod", "warehouse", "P1", "P2", "ml", ""])


@given(st.lists(st.tuples(LABEL, VALUE), unique_by=lambda kv: kv[0]))
def test_routing_depends_on_the_labels_not_their_order(items: list[tuple[str, str]]) -> None:
    routing = tree(
        {
            "routes": [
                {"match": {"team": "ml"}, "receiver": "team", "continue": True},
                {"match_re": {"store": "redis.*"}, "severity": ["P1"], "receiver": "oncall"},
                {"group_by": ["store", "team"], "receiver": "audit"},
            ]
        }
    )
    assert routing.route(dict(items)) == routing.route(dict(reversed(items)))


# --- validation -------------------------------------------------------------------------------


def test_the_root_route_takes_no_conditions() -> None:
    with pytest.raises(ValidationError, match="expected no conditions on the root route"):
        RootRouteConfig.model_validate({"receiver": "team", "match": {"store": "x"}})


def test_an_invalid_regex_is_refused_with_its_label() -> None:
    with pytest.raises(ValidationError, match="expected a regular expression for store"):
        RootRouteConfig.model_validate({"routes": [{"match_re": {"store": "("}}]})


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        RootRouteConfig.model_validate({"routes": [{"matches": {"store": "x"}}]})


def test_a_receiver_not_in_the_config_is_reported_at_its_path() -> None:
    route = RootRouteConfig.model_validate(
        {"receiver": "team", "routes": [{"routes": [{"receiver": "pager"}]}]}
    )
    assert receiver_problems(route, {"team"}) == [
        (
            ("route", "routes", 0, "routes", 0, "receiver"),
            "expected a receiver of `receivers` (team), found 'pager'",
        )
    ]


# --- the grouper ------------------------------------------------------------------------------


def feed(
    routing: RoutingTree, state: GroupState, events: Sequence[AlertEvent], now: datetime
) -> tuple[GroupState, list[tuple[str, int]]]:
    """Group `events` at `now`; (receiver, alert count) of each notification sent."""
    grouped = group(state, routing.routed(events), now)
    return grouped.state, [(n.receiver, len(n.alerts)) for n in grouped.notifications]


def test_a_failing_store_is_one_notification_per_receiver() -> None:
    events = [alert(f"user_stats.check_{i}") for i in range(5)]
    state, sent = feed(tree(), GroupState(), events, AT)
    assert sent == []  # group_wait: the first notification of a new group waits
    state, sent = feed(tree(), state, [], AT + 30 * SECOND)
    assert sent == [("audit", 5), ("oncall", 5), ("team", 5)]


def test_alerts_arriving_within_group_wait_go_in_the_first_notification() -> None:
    state, _ = feed(tree(), GroupState(), [alert("a")], AT)
    state, _ = feed(tree(), state, [alert("b")], AT + 20 * SECOND)
    state, sent = feed(tree(), state, [], AT + 29 * SECOND)
    assert sent == []
    _, sent = feed(tree(), state, [], AT + 30 * SECOND)
    assert ("team", 2) in sent


def test_later_changes_are_batched_until_group_interval_has_passed() -> None:
    routing = tree({"receiver": "team"})
    state, _ = feed(routing, GroupState(), [alert("a")], AT)
    state, sent = feed(routing, state, [], AT + 30 * SECOND)  # first send
    assert sent == [("team", 1)]
    state, sent = feed(routing, state, [alert("b")], AT + 60 * SECOND)
    state, more = feed(routing, state, [alert("c")], AT + 120 * SECOND)
    assert sent == more == []
    assert state.next_flush() == AT + 30 * SECOND + timedelta(minutes=5)
    _, sent = feed(routing, state, [], AT + 330 * SECOND)
    assert sent == [("team", 2)]


def test_a_change_long_after_the_last_send_goes_at_once() -> None:
    routing = tree({"receiver": "team"})
    state, _ = feed(routing, GroupState(), [alert("a")], AT)
    state, _ = feed(routing, state, [], AT + 30 * SECOND)
    _, sent = feed(routing, state, [alert("b")], AT + timedelta(hours=1))
    assert sent == [("team", 1)]


def test_groups_are_split_by_the_group_by_labels() -> None:
    routing = tree({"receiver": "team"})
    events = [alert("a", store="redis_prod"), alert("b", store="warehouse")]
    state, _ = feed(routing, GroupState(), events, AT)
    grouped = group(state, (), AT + 30 * SECOND)
    assert [dict(n.group_labels) for n in grouped.notifications] == [
        {"store": "redis_prod"},
        {"store": "warehouse"},
    ]


def test_an_alert_that_fires_and_resolves_before_the_first_send_is_never_sent() -> None:
    routing = tree({"receiver": "team"})
    state, _ = feed(routing, GroupState(), [alert("a")], AT)
    state, _ = feed(routing, state, [alert("a", AlertState.RESOLVED)], AT + 10 * SECOND)
    state, sent = feed(routing, state, [], AT + 30 * SECOND)
    assert sent == []
    assert not state.groups


def test_a_resolved_alert_is_sent_and_an_empty_group_is_forgotten() -> None:
    routing = tree({"receiver": "team"})
    state, _ = feed(routing, GroupState(), [alert("a")], AT)
    state, _ = feed(routing, state, [], AT + 30 * SECOND)
    state, sent = feed(routing, state, [alert("a", AlertState.RESOLVED)], AT + timedelta(hours=1))
    assert sent == [("team", 1)]
    assert not state.groups


def test_a_notification_lists_firing_first_and_says_what_all_share() -> None:
    routing = tree({"receiver": "team"})
    state, _ = feed(routing, GroupState(), [alert("a"), alert("b")], AT)
    state, _ = feed(routing, state, [], AT + 30 * SECOND)
    events = [alert("a", AlertState.RESOLVED), alert("c", severity="P2")]
    (note,) = group(state, routing.routed(events), AT + timedelta(hours=1)).notifications
    assert [(a.labels["check"], a.state) for a in note.alerts] == [
        ("c", AlertState.FIRING),
        ("a", AlertState.RESOLVED),
    ]
    assert note.status == "firing"
    assert dict(note.common_labels) == {"alertname": "featmon_check_failed", "store": "redis_prod"}


def test_an_alert_routed_nowhere_creates_no_group() -> None:
    state, sent = feed(tree(), GroupState(), [alert("a", severity="P4")], AT)
    assert (sent, dict(state.groups)) == ([], {})


def test_grouping_is_deterministic() -> None:
    events = [alert(f"c{i}", store=s) for i, s in enumerate(["b", "a", "b", "a"])]
    routed = tree().routed(events)
    first = group(group(GroupState(), routed, AT).state, (), AT + 30 * SECOND)
    again = group(group(GroupState(), tuple(reversed(routed)), AT).state, (), AT + 30 * SECOND)
    assert first.notifications == again.notifications


# --- lifecycle, routing and grouping together -------------------------------------------------


def blind(view: str) -> CheckResult:
    return CheckResult(
        check=f"{view}.freshness@online",
        kind="freshness",
        feature_view=view,
        feature=None,
        store="redis_prod",
        target="online",
        status=Status.ERROR,
        severity="P1",
        value=None,
        threshold=Threshold("max", 3600.0, None, "seconds"),
        sample_size=None,
        details=ErrorDetails("redis_prod: connection refused"),
    )


def test_a_store_that_goes_blind_pages_each_receiver_once() -> None:
    views = ["user_stats", "items", "sessions"]
    run = RunResult("run-1", AT, AT, AT, tuple(blind(v) for v in views))
    step = advance({}, run, AlertingConfig(), AT)
    routing = tree()
    routed: tuple[Routed, ...] = routing.routed(step.events)
    waiting = group(GroupState(), routed, AT)
    sent = group(waiting.state, (), AT + 30 * SECOND).notifications
    assert [(n.receiver, len(n.alerts)) for n in sent] == [("audit", 3), ("oncall", 3), ("team", 3)]
    assert {n.group_key for n in sent} == {
        'route.routes[0]{store="redis_prod"}',
        'route.routes[1]{store="redis_prod"}',
        'route.routes[2]{store="redis_prod"}',
    }
