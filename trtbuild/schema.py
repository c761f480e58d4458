"""Structural checks for the JSON trtbuild reads back (engine manifests, run records, recipe specs).

Files written by another machine, another trtbuild version or another person are data to check, not
to trust: a field of the wrong JSON type must end in one sentence naming the file and the field, not
in a ``TypeError`` three calls later. A schema here is a small tree of plain objects (no dependency,
no code in the data):

    Obj({"format": Str, "plan": Obj({"size": Int, "sha256": Str}, required=("size",))}, required=("plan",))

:func:`problem` returns the first mismatch as text (``'plan.size' is a string ("12"), expected a whole
number``) or None; :func:`check` raises the caller's error type with that text in its sentence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from trtbuild.errors import TrtbuildError


class Schema:
    """A node of a schema; subclasses say what they accept in :meth:`walk`."""

    name: str

    def walk(self, value: Any, path: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class _Bad(Exception):
    def __init__(self, path: str, text: str) -> None:
        super().__init__(text)
        self.path = path
        self.text = text


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"a whole number ({_short(value)})"
    if isinstance(value, float):
        return f"a number ({_short(value)})"
    if isinstance(value, str):
        return f"a string ({_short(value)})"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _short(value: Any, limit: int = 40) -> str:
    import json

    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fail(path: str, value: Any, expected: str) -> NoReturn:
    raise _Bad(path, f"{_where(path)} is {_kind(value)}, expected {expected}")


def _where(path: str) -> str:
    return f"'{path}'" if path else "the top level"


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


@dataclass(frozen=True)
class _Scalar(Schema):
    name: str
    accepts: Callable[[Any], bool]

    def walk(self, value: Any, path: str) -> None:
        if not self.accepts(value):
            _fail(path, value, self.name)


Str = _Scalar("a string", lambda v: isinstance(v, str))
Bool = _Scalar("true or false", lambda v: isinstance(v, bool))
Int = _Scalar("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool))
#: A finite number (int or float): NaN and infinity are refused, as a JSON reader without extensions would.
Num = _Scalar("a finite number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
#: Any number, NaN and infinity included (Python's json writes and reads them; an error metric may be inf).
Real = _Scalar("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
AnyValue = _Scalar("any value", lambda v: True)
#: A version as people write it in JSON: "10.13.0.35", 10.13 or 10.
Version = _Scalar("a version string", lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool))


@dataclass(frozen=True)
class Nullable(Schema):
    inner: Schema

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.inner.name} or null"

    def walk(self, value: Any, path: str) -> None:
        if value is not None:
            self.inner.walk(value, path)


@dataclass(frozen=True)
class Range(Schema):
    """A number (whole with ``whole=True``) between ``lo`` and ``hi`` inclusive (None: unbounded)."""

    lo: float | None = None
    hi: float | None = None
    whole: bool = True

    @property
    def name(self) -> str:  # type: ignore[override]
        kind = "a whole number" if self.whole else "a finite number"
        if self.lo is not None and self.hi is not None:
            return f"{kind} from {self.lo:g} to {self.hi:g}"
        if self.lo is not None:
            return f"{kind} of at least {self.lo:g}"
        return kind

    def walk(self, value: Any, path: str) -> None:
        ok_type = Int.accepts(value) if self.whole else Num.accepts(value)
        if not ok_type or (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            _fail(path, value, self.name)


@dataclass(frozen=True)
class OneOf(Schema):
    """One of a fixed set of values (strings, usually)."""

    values: tuple[Any, ...]

    @property
    def name(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(_short(v) for v in self.values)

    def walk(self, value: Any, path: str) -> None:
        if not any(value == v and type(value) is type(v) for v in self.values):
            _fail(path, value, self.name)


@dataclass(frozen=True)
class ListOf(Schema):
    item: Schema
    max_len: int | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        return "a list"

    def walk(self, value: Any, path: str) -> None:
        if not isinstance(value, (list, tuple)):
            _fail(path, value, f"a list of {self.item.name}")
        if self.max_len is not None and len(value) > self.max_len:
            raise _Bad(path, f"{_where(path)} has {len(value)} entries, more than the {self.max_len} allowed")
        for i, item in enumerate(value):
            self.item.walk(item, _join(path, i))


@dataclass(frozen=True)
class MapOf(Schema):
    """An object with any string keys whose values all match ``value``."""

    value: Schema

    @property
    def name(self) -> str:  # type: ignore[override]
        return "an object"

    def walk(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            _fail(path, value, "an object")
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Bad(path, f"{_where(path)} has a key that is not a string ({_short(key)})")
            self.value.walk(item, _join(path, key))


@dataclass(frozen=True)
class Obj(Schema):
    """An object with known fields; ``extra=False`` refuses keys it does not list."""

    fields: Mapping[str, Schema]
    required: Iterable[str] = ()
    extra: bool = True
    hint: str = field(default="", compare=False)

    @property
    def name(self) -> str:  # type: ignore[override]
        return "an object"

    def walk(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            _fail(path, value, "an object")
        for key in self.required:
            if key not in value:
                raise _Bad(path, f"{_where(_join(path, key))} is missing")
        if not self.extra:
            unknown = sorted(str(k) for k in value if k not in self.fields)
            if unknown:
                known = f" (known: {', '.join(sorted(self.fields))})" if len(self.fields) <= 12 else ""
                raise _Bad(path, f"{_where(path)} has unknown key(s) {', '.join(unknown)}{known}")
        for key, schema in self.fields.items():
            if key in value:
                schema.walk(value[key], _join(path, key))


def problem(value: Any, schema: Schema, path: str = "") -> str | None:
    """The first way ``value`` differs from ``schema``, as a phrase; None when it matches."""
    try:
        schema.walk(value, path)
    except _Bad as bad:
        return bad.text
    except RecursionError:
        return "it is nested too deeply"
    return None


def check(value: Any, schema: Schema, error: Callable[[str], TrtbuildError]) -> None:
    """Raise ``error(phrase)`` when ``value`` does not match ``schema``."""
    text = problem(value, schema)
    if text is not None:
        raise error(text)
