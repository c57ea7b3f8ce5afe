"""`EntityReading`: the two ways of building one (readings with their own times, or a row of
shared readings in the order of an index with one time) read alike, and it cannot be changed."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from checks.observation import (
    ABSENT,
    UNDECODABLE,
    EntityReading,
    FeatureReading,
    FeatureState,
    reading_of,
)

T1 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
INDEX = MappingProxyType({"revenue": 0, "orders": 1, "segment": 2})


def test_a_row_reads_each_feature_at_its_position_and_absent_where_not_written() -> None:
    """reading() finds a feature by the index; ABSENT cells and unknown names are ABSENT."""
    gold = FeatureReading(FeatureState.VALUE, "gold")
    entity = EntityReading.of_row((1,), INDEX, (UNDECODABLE, ABSENT, gold), T1)
    assert entity.reading("revenue") is UNDECODABLE
    assert entity.reading("orders") is ABSENT
    assert entity.reading("segment") is gold
    assert entity.reading("undeclared") is ABSENT


def test_a_rows_features_leave_out_the_absent_ones_and_its_time_is_the_rows() -> None:
    """features maps only what was found; the event time is the one given for the row."""
    gold = FeatureReading(FeatureState.VALUE, "gold")
    entity = EntityReading.of_row((1,), INDEX, (ABSENT, ABSENT, gold), T1)
    assert dict(entity.features) == {"segment": gold}
    assert (entity.key, entity.present, entity.event_time) == ((1,), True, T1)


def test_readings_with_their_own_times_make_the_newest_the_entitys() -> None:
    """Built from a mapping (one time per feature, as the SQL stores read), the entity's event
    time is the newest of its features'; with no features it has none."""
    features = {
        "revenue": FeatureReading(FeatureState.VALUE, 1.5, T2),
        "orders": FeatureReading(FeatureState.NULL, None, T1),
    }
    entity = EntityReading((1,), True, MappingProxyType(features))
    assert entity.event_time == T2
    assert entity.reading("orders") == features["orders"]
    assert dict(entity.features) == features
    assert EntityReading((2,), False).event_time is None


def test_entities_are_equal_by_what_they_read_however_built() -> None:
    """A row and a mapping holding the same readings and time are equal; another time is not."""
    value = FeatureReading(FeatureState.VALUE, 3)
    row = EntityReading.of_row((1,), INDEX, (ABSENT, value, ABSENT), T1)
    assert row == EntityReading.of_row((1,), {"orders": 0}, (value,), T1)
    assert row != EntityReading.of_row((1,), INDEX, (ABSENT, value, ABSENT), T2)
    assert row != EntityReading((1,), True, {"orders": value})  # no time at all
    assert "orders" in repr(row)


def test_an_entity_cannot_be_changed() -> None:
    """Its attributes are read-only, and it is not hashable (its readings are a mapping)."""
    entity = EntityReading((1,), False)
    with pytest.raises(AttributeError):
        entity.present = True  # type: ignore[misc]  # the test asserts a frozen value refuses the assignment
    with pytest.raises(TypeError):
        hash(entity)


def test_a_reading_built_by_reading_of_is_the_frozen_reading_feature_reading_builds() -> None:
    """reading_of(state, value) equals, hashes like and is as immutable as FeatureReading's."""
    built = reading_of(FeatureState.VALUE, 1.5)
    assert built == FeatureReading(FeatureState.VALUE, 1.5)
    assert hash(built) == hash(FeatureReading(FeatureState.VALUE, 1.5))
    assert built.event_time is None
    with pytest.raises(AttributeError):
        built.value = 2.5  # type: ignore[misc]  # frozen: the assignment must fail
