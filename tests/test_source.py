"""YAML to validated models: every problem located at file, line and YAML path, all at once."""

from __future__ import annotations

import pytest

from checks.checkfile import CheckFile
from checks.compose import DEFAULT_LIMITS, Limits
from checks.errors import ConfigError, Problem
from checks.plan import problems_of
from checks.source import Document, dotted, interpolate, load_yaml, validate


def problems_in(text: str, env: dict[str, str] | None = None) -> list[str]:
    """Every problem of one check file, as the user reads them."""
    with pytest.raises(ConfigError) as caught:
        check_file(text, env)
    return [str(p) for p in caught.value.problems]


def check_file(text: str, env: dict[str, str] | None = None) -> CheckFile:
    return validate(CheckFile, interpolate(load_yaml(text, "t.yaml"), env or {}))


def cross_field(text: str) -> list[str]:
    """The problems `problems_of` finds in a file that is valid field by field."""
    doc = load_yaml(text, "t.yaml")
    return [
        str(doc.problem(path, message)) for path, message in problems_of(validate(CheckFile, doc))
    ]


# --- load_yaml --------------------------------------------------------------------------------

NESTED = """\
feature_views:
  - name: user_stats
    entity: user_id
    features:
      revenue: float
    checks:
      - kind: freshness
        max: 1h
      - {kind: coverage, min: 0.9}
"""


def test_load_yaml_knows_the_line_of_every_key_and_item() -> None:
    doc = load_yaml(NESTED, "t.yaml")
    assert doc.lines[("feature_views",)] == 1
    assert doc.lines[("feature_views", 0)] == 2
    assert doc.lines[("feature_views", 0, "features", "revenue")] == 5
    assert doc.lines[("feature_views", 0, "checks", 0)] == 7
    assert doc.lines[("feature_views", 0, "checks", 0, "max")] == 8
    assert doc.lines[("feature_views", 0, "checks", 1, "min")] == 9


def test_the_line_of_a_path_that_is_not_written_is_that_of_its_nearest_parent() -> None:
    """A missing key is reported where the mapping that lacks it starts."""
    doc = load_yaml(NESTED, "t.yaml")
    assert doc.line_of(("feature_views", 0, "checks", 1, "severity")) == 9
    assert doc.line_of(("feature_views", 0, "ttl")) == 2
    assert doc.line_of(("nothing", "here")) == 1


def test_dotted_path_reads_like_the_yaml() -> None:
    assert dotted(("feature_views", 0, "checks", 2, "max")) == "feature_views[0].checks[2].max"
    assert dotted(()) == ""


def test_an_empty_file_is_an_empty_mapping() -> None:
    assert load_yaml("# nothing yet\n", "t.yaml") == Document("t.yaml", {}, {(): 1})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "feature_views:\n  - name: a\n    entity: [user_id\n    ttl: 1d\n",
            "t.yaml:4: YAML syntax error at column 8: expected ',' or ']', but got ':'",
        ),
        (
            "feature_views:\n  - name: a\n    ttl: 1d\n     entity: x\n",
            "t.yaml:4: YAML syntax error at column 12: mapping values are not allowed here",
        ),
        (
            "feature_views:\n  - name: a\n\tentity: x\n",
            "t.yaml:3: YAML syntax error at column 1: found character '\\t' that cannot start any token",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "t.yaml:2: YAML syntax error at column 1: expected a single document in the stream, "
            "but found another document",
        ),
    ],
)
def test_a_yaml_syntax_error_names_its_line_and_column(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml(text, "t.yaml")
    assert [str(p) for p in caught.value.problems] == [problem]


def test_duplicate_keys_are_each_reported_with_both_lines() -> None:
    """Plain PyYAML keeps the last value silently; a monitor must not guess."""
    text = "feature_views:\n  - name: a\n    ttl: 1d\n    name: b\n    ttl: 2d\nfeature_views: []\n"
    with pytest.raises(ConfigError) as caught:
        load_yaml(text, "t.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "t.yaml:4: feature_views[0].name: duplicate key (first at line 2)",
        "t.yaml:5: feature_views[0].ttl: duplicate key (first at line 3)",
        "t.yaml:6: feature_views: duplicate key (first at line 1)",
    ]


def test_a_key_that_is_not_text_is_a_problem() -> None:
    """YAML 1.1 reads `yes:` as true and `null:` as None: neither can name a field."""
    with pytest.raises(ConfigError) as caught:
        load_yaml("features:\n  yes: int\n  null: float\n", "t.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "t.yaml:2: features: expected a text key, found True",
        "t.yaml:3: features: expected a text key, found None",
    ]


def test_a_merge_key_brings_in_the_anchor_and_written_keys_override_it() -> None:
    """`<<: *defaults` then `sample: 20` is the point of merge keys, not a duplicate."""
    doc = load_yaml(
        "base: &b {store: r, sample: 10, tags: [a, b]}\nonline:\n  <<: *b\n  sample: 20\n"
        "  tags: [c]\n",
        "t.yaml",
    )
    assert doc.data == {
        "base": {"store": "r", "sample": 10, "tags": ["a", "b"]},
        "online": {"store": "r", "sample": 20, "tags": ["c"]},
    }
    assert doc.lines[("online", "sample")] == 4
    assert ("online", "tags", 1) not in doc.lines  # nothing left of the overridden list


def test_a_key_written_twice_beside_a_merge_key_is_still_a_duplicate() -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml("a: &a {x: 1}\nc:\n  <<: *a\n  x: 2\n  x: 3\n", "t.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "t.yaml:5: c.x: duplicate key (first at line 4)"
    ]


# --- interpolate ------------------------------------------------------------------------------

ENV_TEXT = """\
url: ${DB_URL}
table: features.${SCHEMA:-public}_${TABLE}
empty: ${EMPTY}
fallback: ${EMPTY:-used}
items: ["${TABLE}", 5, true]
plain: $HOME and ${ not a variable
"""


def test_interpolation_expands_variables_and_defaults() -> None:
    env = {"DB_URL": "postgresql://db", "TABLE": "users", "EMPTY": ""}
    assert interpolate(load_yaml(ENV_TEXT, "t.yaml"), env).data == {
        "url": "postgresql://db",
        "table": "features.public_users",
        "empty": "",  # set but empty: `${VAR}` keeps it
        "fallback": "used",  # `:-` also covers set-but-empty, as in the shell
        "items": ["users", 5, True],
        "plain": "$HOME and ${ not a variable",
    }


def test_interpolation_keeps_the_lines() -> None:
    doc = load_yaml(ENV_TEXT, "t.yaml")
    assert interpolate(doc, {"DB_URL": "x", "TABLE": "y", "EMPTY": ""}).lines == doc.lines


def test_every_unset_variable_is_a_problem_at_its_line() -> None:
    with pytest.raises(ConfigError) as caught:
        interpolate(load_yaml(ENV_TEXT, "t.yaml"), {"EMPTY": ""})
    assert [str(p) for p in caught.value.problems] == [
        "t.yaml:1: url: expected environment variable DB_URL to be set, found it unset",
        "t.yaml:2: table: expected environment variable TABLE to be set, found it unset",
        "t.yaml:5: items[0]: expected environment variable TABLE to be set, found it unset",
    ]


def test_an_interpolated_value_is_validated_like_a_written_one() -> None:
    text = (
        "feature_views:\n  - name: v\n    entity: id\n    ttl: ${TTL:-2h}\n"
        "    features: {a: int}\n    online: {store: r, sample: '${SAMPLE}'}\n"
    )
    view = check_file(text, {"SAMPLE": "500"}).feature_views[0]
    assert (view.ttl.total_seconds(), view.online and view.online.sample) == (7200, 500)


# --- validate ---------------------------------------------------------------------------------

MANY_MISTAKES = """\
feature_views:
  - name: user_stats
    entity: user_id
    ttl: 7 days
    timestamp: event_timestamp
    features:
      revenue: float
      purchases: integer
    online: {store: redis_prod, sample: lots}
    offline: {store: warehouse, table: features.user_stats}
    labels: {team: growth, tier: 1}
    checks:
      - kind: freshness
        quantile: p95
        max: 1h
      - kind: coverage
        min: 0.95
        severity: P0
      - name: revenue_nulls
        kind: null_rat
        max: 0.01
      - kind: schema_drift
        alow_added: true
      - kind: freshness
        warn: 2h
        max: 1h
  - name: merchant_stats
    entity: merchant_id
    features: {avg_ticket: double}
    checks:
      - {kind: null_rate, max: lots}
      - {max: 0.1}
"""


def test_every_problem_of_a_file_is_reported_at_once_at_its_own_line() -> None:
    assert problems_in(MANY_MISTAKES) == [
        "t.yaml:4: feature_views[0].ttl: expected a duration such as 30s, 5m, 1h30m or 7d, "
        "found '7 days'",
        "t.yaml:8: feature_views[0].features.purchases: expected 'int', 'int32', 'int64', "
        "'float', 'float32', 'float64', 'double', 'string', 'bool', 'bytes' or 'timestamp', "
        "found 'integer'",
        "t.yaml:9: feature_views[0].online.sample: expected a whole number, found 'lots'",
        "t.yaml:11: feature_views[0].labels.tier: expected text, found 1",
        "t.yaml:14: feature_views[0].checks[0].quantile: expected 'p50', 'p90', 'p99' or 'max', "
        "found 'p95'",
        "t.yaml:18: feature_views[0].checks[1].severity: expected 'P1', 'P2', 'P3' or 'P4', "
        "found 'P0'",
        "t.yaml:20: feature_views[0].checks[2].kind: expected 'kind' to be one of 'freshness', "
        "'coverage', 'null_rate', 'schema_drift', 'late_arrivals', 'row_count', 'duplicates', "
        "'range', 'skew', 'distribution_drift', 'anomaly', 'soda', "
        "found 'null_rat'",
        "t.yaml:23: feature_views[0].checks[3].alow_added: unknown key 'alow_added' "
        "(did you mean 'allow_added'?)",
        "t.yaml:24: feature_views[0].checks[4]: expected `warn` at most `max`, found warn 2h > max 1h",
        "t.yaml:27: feature_views[1].ttl: expected this required key, found it missing",
        "t.yaml:31: feature_views[1].checks[0].max: expected a number, found 'lots'",
        "t.yaml:32: feature_views[1].checks[1]: expected a 'kind' key, found none",
    ]


def test_the_error_message_counts_and_lists_the_problems() -> None:
    with pytest.raises(ConfigError) as caught:
        check_file("feature_views:\n  - name: v\n")
    assert str(caught.value) == (
        "3 problems in the configuration\n"
        "  t.yaml:2: feature_views[0].entity: expected this required key, found it missing\n"
        "  t.yaml:2: feature_views[0].features: expected this required key, found it missing\n"
        "  t.yaml:2: feature_views[0].ttl: expected this required key, found it missing"
    )


def test_an_unknown_key_with_nothing_close_gets_no_hint() -> None:
    text = "feature_views:\n  - name: v\n    entity: id\n    ttl: 1d\n    features: {a: int}\n    colour: red\n"
    assert problems_in(text) == ["t.yaml:6: feature_views[0].colour: unknown key 'colour'"]


def test_an_unknown_top_level_key_gets_a_hint() -> None:
    assert problems_in("feature_view: []\n") == [
        "t.yaml:1: feature_view: unknown key 'feature_view' (did you mean 'feature_views'?)",
    ]


def test_extra_vocabulary_feeds_the_hint() -> None:
    doc = load_yaml("feature_views: []\nrecievers: {}\n", "t.yaml")
    with pytest.raises(ConfigError) as caught:
        validate(CheckFile, doc, vocabulary=["receivers"])
    assert "t.yaml:2: recievers: unknown key 'recievers' (did you mean 'receivers'?)" in [
        str(p) for p in caught.value.problems
    ]


def test_an_empty_file_lacks_its_views() -> None:
    assert problems_in("") == [
        "t.yaml:1: expected at least one of `feature_views` or `models`, found none"
    ]


def test_a_file_that_is_not_a_mapping_says_so() -> None:
    assert problems_in("- a\n- b\n") == ["t.yaml:1: expected a mapping, found a list"]


def test_no_views_is_a_problem_but_one_bad_view_is_not_also_no_views() -> None:
    """Pydantic re-checks a tuple's length without its failed items; that is not the user's
    mistake and must not be reported."""
    assert problems_in("feature_views: []\n") == [
        "t.yaml:1: expected at least one of `feature_views` or `models`, found none"
    ]
    one_bad = "feature_views:\n  - name: v\n    entity: id\n    ttl: soon\n    features: {a: int}\n"
    assert problems_in(one_bad) == [
        "t.yaml:4: feature_views[0].ttl: expected a duration such as 30s, 5m, 1h30m or 7d, "
        "found 'soon'"
    ]


@pytest.mark.parametrize(
    ("entity", "problem"),
    [
        ("5", "feature_views[0].entity: expected text or a list, found 5"),
        ("{a: 1}", "feature_views[0].entity: expected text or a list, found a mapping"),
        ("[]", "feature_views[0].entity: expected at least 1 item(s), found 0"),
        ("[merchant_id, 3]", "feature_views[0].entity[1]: expected text, found 3"),
    ],
)
def test_a_wrong_entity_is_one_problem_naming_both_spellings(entity: str, problem: str) -> None:
    """`entity` is text or a list of text: one problem, not one per branch of the union."""
    text = f"feature_views:\n  - name: v\n    entity: {entity}\n    ttl: 1d\n    features: {{a: int}}\n"
    assert problems_in(text) == [f"t.yaml:3: {problem}"]


def view_text(**changes: str) -> str:
    """One view, a key a line: name on line 2, entity 3, ttl 4, features 5, anything else 6."""
    fields = {"name": "v", "entity": "id", "ttl": "1d", "features": "{a: int}", **changes}
    lines = [f"    {key}: {value}" for key, value in fields.items()]
    return "feature_views:\n  - " + "\n".join(lines).lstrip() + "\n"


@pytest.mark.parametrize(
    ("key", "written", "problem"),
    [
        (
            "name",
            "bad name",
            "t.yaml:2: feature_views[0].name: expected text matching "
            "^[A-Za-z_][A-Za-z0-9_.-]*$, found 'bad name'",
        ),
        (
            "ttl",
            "-5",
            "t.yaml:4: feature_views[0].ttl: expected a duration of zero or more seconds, found -5",
        ),
        (
            "ttl",
            ".inf",
            "t.yaml:4: feature_views[0].ttl: expected a duration of zero or more seconds, found inf",
        ),
        (
            "ttl",
            "1e20",
            "t.yaml:4: feature_views[0].ttl: expected a duration such as 30s, 5m, 1h30m or 7d, "
            "found '1e20'",
        ),
        (
            "features",
            "{}",
            "t.yaml:5: feature_views[0].features: expected at least 1 item(s), found 0",
        ),
        (
            "online",
            "{store: r, sample: 0}",
            "t.yaml:6: feature_views[0].online.sample: expected a number at least 1, found 0",
        ),
        (
            "online",
            "{store: r, population: everyone}",
            "t.yaml:6: feature_views[0].online.population: expected 'offline', 'online' or "
            "'query', found 'everyone'",
        ),
        (
            "online",
            "{sample: 10}",
            "t.yaml:6: feature_views[0].online.store: expected this required key, found it missing",
        ),
        (
            "offline",
            "{store: w}",
            "t.yaml:6: feature_views[0].offline: expected exactly one of `table` (sql) or "
            "`path` (parquet), found neither",
        ),
        (
            "checks",
            "{kind: freshness}",
            "t.yaml:6: feature_views[0].checks: expected a list, found a mapping",
        ),
        (
            "checks",
            "[{kind: coverage, min: 1.5}]",
            "t.yaml:6: feature_views[0].checks[0].min: expected a number at most 1.0, found 1.5",
        ),
        (
            "checks",
            "[{kind: freshness, max: 1 hour}]",
            "t.yaml:6: feature_views[0].checks[0].max: expected a duration such as 30s, 5m, "
            "1h30m or 7d, found '1 hour'",
        ),
        (
            "checks",
            "[{kind: schema_drift, allow_added: maybe}]",
            "t.yaml:6: feature_views[0].checks[0].allow_added: expected true or false, "
            "found 'maybe'",
        ),
        (
            "checks",
            "[{kind: schema_drift, max: 1.5}]",
            "t.yaml:6: feature_views[0].checks[0].max: expected a whole number, found 1.5",
        ),
    ],
)
def test_a_wrong_value_says_what_was_expected_and_what_was_found(
    key: str, written: str, problem: str
) -> None:
    assert problems_in(view_text(**{key: written})) == [problem]


def test_a_wrong_kind_in_block_style_points_at_the_kind_line() -> None:
    text = (
        "feature_views:\n  - name: v\n    entity: id\n    ttl: 1d\n    features: {a: int}\n"
        "    checks:\n      - severity: P1\n        max: 1h\n        kind: freshnes\n"
    )
    assert problems_in(text) == [
        "t.yaml:9: feature_views[0].checks[0].kind: expected 'kind' to be one of 'freshness', "
        "'coverage', 'null_rate', 'schema_drift', 'late_arrivals', 'row_count', 'duplicates', "
        "'range', 'skew', 'distribution_drift', 'anomaly', 'soda', "
        "found 'freshnes'"
    ]


def test_a_problem_without_a_line_names_only_the_file() -> None:
    assert str(Problem("t.yaml", 0, "", "cannot read the file")) == "t.yaml: cannot read the file"


def test_problems_of_several_files_are_sorted_by_file_then_line() -> None:
    error = ConfigError(
        [
            Problem("b.yaml", 1, "x", "m"),
            Problem("a.yaml", 9, "y", "m"),
            Problem("a.yaml", 2, "z", "m"),
        ]
    )
    assert [(p.file, p.line) for p in error.problems] == [
        ("a.yaml", 2),
        ("a.yaml", 9),
        ("b.yaml", 1),
    ]


# --- problems_of: rules across fields ---------------------------------------------------------

CROSS = """\
feature_views:
  - name: user_stats
    entity: user_id
    entity_types: {user_id: int64, userid: string}
    ttl: 1d
    features: {revenue: float, purchases: int64}
    online: {store: redis_prod}
    checks:
      - {kind: null_rate, feature: revenu, max: 0.1}
      - kind: coverage
        min: 0.9
        features:
          - revenue
          - purchase
      - {kind: freshness, max: 1h, target: offline}
      - {kind: schema_drift}
  - name: lake_only
    entity: [merchant_id, user_id]
    entity_types: {merchant: string}
    ttl: 1d
    features: {amount: double}
    offline: {store: lake, path: tx/}
    checks:
      - kind: coverage
        min: 0.9
"""


def test_cross_field_problems_are_located_at_their_own_lines() -> None:
    assert cross_field(CROSS) == [
        "t.yaml:4: feature_views[0].entity_types.userid: expected one of the join keys "
        "['user_id'], found 'userid'",
        "t.yaml:9: feature_views[0].checks[0].feature: expected a declared feature "
        "['purchases', 'revenue'], found 'revenu'",
        "t.yaml:14: feature_views[0].checks[1].features[1]: expected a declared feature "
        "['purchases', 'revenue'], found 'purchase'",
        "t.yaml:15: feature_views[0].checks[2].target: expected the view to declare an "
        "`offline` source for freshness, found none",
        "t.yaml:19: feature_views[1].entity_types.merchant: expected one of the join keys "
        "['merchant_id', 'user_id'], found 'merchant'",
        "t.yaml:24: feature_views[1].checks[0].target: expected the view to declare an "
        "`online` source for coverage, found none",
    ]


@pytest.mark.parametrize("kind", ["late_arrivals", "row_count", "duplicates"])
def test_an_offline_only_kind_on_an_online_only_view_asks_for_an_offline_source(
    kind: str,
) -> None:
    """The message names the source the kind needs (offline), not the one the view lacks least."""
    extra = {"late_arrivals": ", watermark: 10m, max: 0.1", "row_count": ", min: 1"}.get(
        kind, ", max: 0"
    )
    text = f"""\
feature_views:
  - name: online_only
    entity: user_id
    ttl: 1d
    features: {{amount: double}}
    online: {{store: redis}}
    checks:
      - {{kind: {kind}{extra}}}
"""
    assert cross_field(text) == [
        f"t.yaml:8: feature_views[0].checks[0].target: expected the view to declare an "
        f"`offline` source for {kind}, found none",
    ]


def test_a_kind_that_can_measure_either_source_names_both() -> None:
    """A freshness check on a view with neither source may use either."""
    text = """\
feature_views:
  - name: nowhere
    entity: user_id
    ttl: 1d
    features: {amount: double}
    checks:
      - {kind: freshness, max: 1h}
"""
    assert cross_field(text) == [
        "t.yaml:7: feature_views[0].checks[0].target: expected the view to declare an "
        "`online` source or an `offline` source for freshness, found none",
    ]


def test_a_consistent_file_has_no_cross_field_problems() -> None:
    consistent = NESTED.replace(
        "    features:", "    ttl: 1d\n    online: {store: r}\n    features:"
    )
    assert cross_field(consistent) == []


# --- input limits -------------------------------------------------------------------------------


def limit_problem(text: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """The one problem `load_yaml` reports for `text`."""
    with pytest.raises(ConfigError) as caught:
        load_yaml(text, "t.yaml", limits)
    assert len(caught.value.problems) == 1
    return str(caught.value.problems[0])


def laughs(levels: int = 9) -> str:
    """ "Billion laughs": each level a list of nine aliases of the level below."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join([*lines, f"feature_views: *l{levels}", ""])


def test_nested_aliases_are_refused_where_their_expansion_passes_the_node_limit() -> None:
    """Nine levels of nine aliases stop at the first alias whose expansion passes 100,000 nodes."""
    assert limit_problem(laughs()) == (
        "t.yaml:6: l5[0]: YAML limit at column 10: expected at most 100000 YAML nodes with "
        "aliases expanded, found more"
    )


def test_many_aliases_of_one_anchor_are_counted_as_they_come() -> None:
    """A list of aliases is refused once its expansion passes the limit, before its end."""
    text = "a: &a [1, 2, 3]\nb: [" + ", ".join(["*a"] * 10) + "]\n"
    assert limit_problem(text, Limits(max_nodes=20)) == (
        "t.yaml:2: b[3]: YAML limit at column 17: expected at most 20 YAML nodes with aliases "
        "expanded, found more"
    )


def test_an_alias_inside_the_node_it_names_is_refused() -> None:
    """`&a [*a]` would expand forever."""
    assert limit_problem("a: &a [1, *a]\n") == (
        "t.yaml:1: a[1]: YAML limit at column 11: expected an alias of a finished node, found "
        "an alias inside the node it names"
    )


def test_block_nesting_deeper_than_the_limit_is_refused_at_its_line() -> None:
    """Nesting of 51 levels in block style is refused at the first line past 50."""
    text = "".join(f"{'  ' * depth}k{depth}:\n" for depth in range(60))
    problem = limit_problem(text)
    assert problem.startswith("t.yaml:50: k0.k1.k2.")
    assert problem.endswith(
        ".k47.k48: YAML limit at column 99: expected YAML nested at most 50 levels deep, "
        "found deeper nesting"
    )


def test_flow_nesting_ten_thousand_deep_is_refused_by_the_depth_limit() -> None:
    """`[[[...]]]` 10,000 deep is the same located problem, not a recursion error."""
    problem = limit_problem("feature_views: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert problem.endswith(
        "[0]: YAML limit at column 65: expected YAML nested at most 50 levels deep, "
        "found deeper nesting"
    )


@pytest.mark.parametrize(
    ("value", "digits"),
    [("9" * 5000, 5000), ("-0." + "1" * 40, 41), ('!!int "' + "7" * 33 + '"', 33)],
)
def test_a_number_with_more_digits_than_the_limit_is_refused(value: str, digits: int) -> None:
    """Ints and floats, plain or tagged, may have 32 digits; more is a located problem."""
    text = f"feature_views:\n  - sample: {value}\n"
    assert limit_problem(text) == (
        "t.yaml:2: feature_views[0].sample: YAML limit at column 13: expected a number of at "
        f"most 32 digits, found one of {digits}"
    )


def test_text_longer_than_the_size_limit_is_refused_unread() -> None:
    """A text past `max_bytes` is one problem naming the limit."""
    assert limit_problem("a: 1\n" * 10, Limits(max_bytes=32)) == (
        "t.yaml: expected a file of at most 32 bytes, found 50 characters; split it "
        "(a config's `checks` may name several files)"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "a: 2026-13-45\n",
            "t.yaml:1: a: expected a valid timestamp, found '2026-13-45' (month must be in 1..12)",
        ),
        (
            "a: [!!float x]\n",
            "t.yaml:1: a[0]: expected a valid float, found 'x' "
            "(could not convert string to float: 'x')",
        ),
    ],
)
def test_a_value_its_tag_cannot_hold_is_a_located_problem(text: str, problem: str) -> None:
    assert limit_problem(text) == problem


FAT_VIEW = """\
  - name: view_{index}
    entity: [user_id, merchant_id]
    ttl: 7d
    timestamp: event_timestamp
    features: {{a: float, b: float, c: int64, d: int64, e: string, f: bool, g: float,
                h: float, i: int64, j: string}}
    online: {{store: online, sample: 2000, population: online}}
    offline: {{store: lake, path: view_{index}.parquet, ingested_at: created_ts}}
    schedule: {{every: 5m, jitter: 30s}}
    labels: {{team: growth, tier: gold}}
    checks:
      - {{kind: freshness, quantile: p99, max: 1h, severity: P1}}
      - {{kind: coverage, min: 0.95, severity: P1}}
      - {{kind: null_rate, feature: a, warn: 0.005, max: 0.01, severity: P2}}
      - {{kind: schema_drift, severity: P2}}
      - {{kind: late_arrivals, watermark: 10m, max: 0.05, severity: P3}}
      - *shared
"""


def test_the_limits_leave_room_for_a_check_file_of_500_fat_views() -> None:
    """500 views of ten features and seven checks each (one shared by an alias) load whole."""
    shared = "&shared {kind: row_count, min: 1000, max: 100000000, severity: P2}"
    views = [FAT_VIEW.format(index=i) for i in range(500)]
    text = "feature_views:\n" + views[0].replace("*shared", shared) + "".join(views[1:])
    checks = check_file(text)
    assert len(text.encode()) < DEFAULT_LIMITS.max_bytes
    assert len(checks.feature_views) == 500


def test_a_hint_suggests_only_keys_that_may_stand_where_the_unknown_key_is() -> None:
    """`column` is a key of an offline partition, not of a view: `colour` on a view gets no
    hint, and a misspelled key inside the partition gets the partition's key."""
    view = "feature_views:\n  - name: v\n    entity: id\n    ttl: 1d\n    features: {a: int}\n"
    assert problems_in(view + "    colour: red\n") == [
        "t.yaml:6: feature_views[0].colour: unknown key 'colour'"
    ]
    offline = "    offline: {store: lake, path: p, partition: {colum: d, by: day}}\n"
    assert problems_in(view + offline) == [
        "t.yaml:6: feature_views[0].offline.partition.colum: unknown key 'colum' "
        "(did you mean 'column'?)",
        "t.yaml:6: feature_views[0].offline.partition.column: expected this required key, "
        "found it missing",
    ]
