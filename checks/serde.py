"""JSON for featmon's frozen values, derived from their types: one serializer, both ways.

`to_json(value)` gives the JSON of any frozen dataclass featmon keeps or shows (a result, a
run, an alert record, a notification, ...) and `from_json(cls, doc)` reads it back; both are a
pydantic `TypeAdapter` over the dataclass, built once per type. The types say the rest:

- a field's JSON name is its name, or the alias of `Annotated[..., Field(alias=...)]`;
- `field(metadata=FLAT)`: the nested value's keys sit in the parent's object (a sample's
  `population`, `asked`, ... beside the details' own keys), and are picked from it when read;
- `field(metadata=omitted(predicate))`: the key is left out when the predicate holds for the
  value (a time that was never set), and reads back as the field's default;
- `JSON_COMPUTED`: properties written beside the fields (`status` of a run), never read back;
- a `Serde` subclass may override `_json_in` to adjust a document before it is read.

Pure: no I/O. Reading a document that is not the value raises pydantic's `ValidationError`
(a `ValueError`), located by field.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    GetCoreSchemaHandler,
    PlainSerializer,
    TypeAdapter,
    WrapSerializer,
)
from pydantic.fields import FieldInfo
from pydantic_core import CoreSchema, core_schema

JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

FrozenMap = Annotated[
    Mapping[K, V],
    AfterValidator(MappingProxyType),
    WrapSerializer(lambda mapping, inner: inner(dict(mapping))),
]
"""A mapping field (a `MappingProxyType`): read back read-only, as the value was built."""

_FLAT = "featmon.flat"
_OMIT = "featmon.omit"


FLAT: Mapping[str, object] = MappingProxyType({_FLAT: True})
"""Field metadata: the nested value's keys sit in the parent's JSON object."""


def omitted(when: Callable[[Any], bool]) -> Mapping[str, object]:
    """Field metadata: the key is left out of the JSON when `when(value)` holds."""
    return MappingProxyType({_OMIT: when})


class Serde:
    """A frozen dataclass whose JSON follows its fields' metadata and `JSON_COMPUTED`."""

    JSON_COMPUTED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _json_in(cls, doc: dict[str, Any]) -> dict[str, Any]:
        """The document about to be read; a subclass may add what its parent knows."""
        return doc

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        schema = handler(source)

        def read(value: object, inner: core_schema.ValidatorFunctionWrapHandler) -> object:
            if isinstance(value, Mapping):
                value = cls._json_in(_unflatten(cls, dict(value)))
            return inner(value)

        def write(value: Serde, inner: core_schema.SerializerFunctionWrapHandler) -> object:
            return _flatten(value, inner(value))

        serialization = core_schema.wrap_serializer_function_ser_schema(write, schema=schema)
        return core_schema.no_info_wrap_validator_function(
            read, schema, serialization=serialization
        )


def to_json(value: object) -> JSON:
    """The JSON document of `value` (lists and dicts, ready for `json.dumps`)."""
    dumped: JSON = _adapter(type(value)).dump_python(value, mode="json", by_alias=True)
    return dumped


def from_json(cls: type[T], doc: object) -> T:
    """The `cls` that `doc` holds. Raises pydantic's `ValidationError` naming the field."""
    read: T = _adapter(cls).validate_python(doc)
    return read


def to_object(value: object) -> dict[str, JSON]:
    """The JSON object of a dataclass `value`."""
    doc = to_json(value)
    if not isinstance(doc, dict):
        raise TypeError(f"expected a dataclass, found {type(value).__name__}")
    return doc


def _aware(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError("expected an ISO 8601 time with its offset")
    return moment


IsoTime = Annotated[
    datetime, AfterValidator(_aware), PlainSerializer(datetime.isoformat, when_used="json")
]
"""A timezone-aware time, written with the offset it was given (`+00:00`, not `Z`)."""


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}
_NAMES: dict[type[Any], Mapping[str, str]] = {}


def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    """Built once per type (building one derives the whole schema of the type)."""
    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


def _names(cls: type[Any]) -> Mapping[str, str]:
    """Each field's JSON name, by field name."""
    if cls in _NAMES:
        return _NAMES[cls]
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {}
    for f in dataclasses.fields(cls):
        aliases = [m.alias for m in getattr(hints[f.name], "__metadata__", ()) if _alias(m)]
        names[f.name] = aliases[0] if aliases else f.name
    _NAMES[cls] = MappingProxyType(names)
    return _NAMES[cls]


def _alias(meta: object) -> bool:
    return isinstance(meta, FieldInfo) and meta.alias is not None


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How one Serde class's JSON differs from pydantic's, worked out once from its fields."""

    flat: tuple[tuple[str, str, tuple[str, ...], bool], ...]  # field, JSON name, keys, optional
    omit: tuple[tuple[str, Callable[[Any], bool]], ...]  # JSON name, when
    computed: tuple[str, ...]


_PLANS: dict[type[Any], _Plan] = {}


def _plan(cls: type[Any]) -> _Plan:
    if cls in _PLANS:
        return _PLANS[cls]
    names, hints = _names(cls), typing.get_type_hints(cls)
    flat, omit = [], []
    for f in dataclasses.fields(cls):
        if f.metadata.get(_FLAT):
            args = typing.get_args(hints[f.name]) or (hints[f.name],)
            (nested,) = [t for t in args if t is not type(None)]
            keys = tuple(_names(nested).values())
            flat.append((f.name, names[f.name], keys, type(None) in args))
        elif f.metadata.get(_OMIT) is not None:
            omit.append((names[f.name], f.metadata[_OMIT]))
    _PLANS[cls] = _Plan(tuple(flat), tuple(omit), cls.JSON_COMPUTED)
    return _PLANS[cls]


def _flatten(value: Serde, doc: dict[str, Any]) -> dict[str, Any]:
    plan = _plan(type(value))
    for _, name, _, _ in plan.flat:
        doc |= doc.pop(name) or {}
    for name, when in plan.omit:
        if when(value):
            del doc[name]
    for name in plan.computed:
        shown = getattr(value, name)
        shown = shown() if callable(shown) else shown  # a method such as `counts()`
        if shown is not None:
            doc[name] = _plain(shown)
    return doc


def _plain(value: object) -> object:
    """A computed value as JSON: a mapping as an object, an enum as its value."""
    if isinstance(value, Mapping):
        return dict(value)
    return getattr(value, "value", value)


def _unflatten(cls: type[Any], doc: dict[str, Any]) -> dict[str, Any]:
    plan = _plan(cls)
    for field, _, keys, optional in plan.flat:
        if field in doc:
            continue
        if any(key in doc for key in keys):
            doc[field] = {key: doc.pop(key) for key in keys if key in doc}
        elif optional:
            doc[field] = None
    for name in plan.computed:
        doc.pop(name, None)
    return doc
