"""Pieces every emulated TensorRT class uses: Dims, IHostMemory, logging, the class template base."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


class Attr:
    """A public attribute of a TensorRT object; ``default`` may be a callable taking the object."""

    def __init__(self, default: Any = None, readonly: bool = False) -> None:
        self.default = default
        self.readonly = readonly
        self.key = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = "_v_" + name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        if self.key not in obj.__dict__:
            d = self.default
            obj.__dict__[self.key] = d(obj) if callable(d) else d
        return obj.__dict__[self.key]

    def __set__(self, obj: Any, value: Any) -> None:
        if self.readonly:
            raise AttributeError(f"can't set attribute '{self.key[3:]}'")
        obj.__dict__[self.key] = value


class TrtObject:
    """Template base: ``_M`` is the fake tensorrt module and ``_L`` its Level (set per install).

    Like pybind11 objects, instances of the emulated classes refuse unknown public attributes, so code
    that sets a member a level lacks (``config.int8_calibrator`` on 11.x) fails as it would for real.
    """

    _M: Any = None
    _L: Any = None

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        if not name.startswith("_") and cls.__module__ == "tensorrt" and not hasattr(cls, name):
            raise AttributeError(f"'tensorrt.{cls.__name__}' object has no attribute '{name}'")
        object.__setattr__(self, name, value)

    def __enter__(self) -> Any:  # real objects still support ``with`` (deprecated)
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class InitCheckedMeta(type):
    """pybind11 refuses a Python subclass whose ``__init__`` skipped the base ``__init__``."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__call__(*args, **kwargs)
        if not getattr(obj, "_trt_base_init", False):
            raise TypeError(f"tensorrt.tensorrt.{_trt_base_name(cls)}.__init__() must be called when overriding __init__")
        return obj


def _trt_base_name(cls: type) -> str:
    for klass in cls.__mro__:
        if getattr(klass, "__module__", "") == "tensorrt":
            return klass.__name__
    return cls.__name__


class Dims:
    """``trt.Dims``: a sequence of ints that compares equal to tuples and lists."""

    MAX_DIMS = 8

    def __init__(self, shape: Iterable[int] = ()) -> None:
        self._d = [int(v) for v in shape]
        if len(self._d) > Dims.MAX_DIMS:
            raise ValueError(f"Dims can have at most {Dims.MAX_DIMS} dimensions")

    def __len__(self) -> int:
        return len(self._d)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return tuple(self._d[i])
        return self._d[i]

    def __setitem__(self, i: int, v: int) -> None:
        self._d[i] = int(v)

    def __iter__(self) -> Any:
        return iter(list(self._d))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Dims):
            return self._d == other._d
        if isinstance(other, (tuple, list)):
            return self._d == [int(v) for v in other]
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "(" + ", ".join(str(v) for v in self._d) + ("," if len(self._d) == 1 else "") + ")"

    __str__ = __repr__


def to_dims(shape: Any) -> list[int]:
    if isinstance(shape, Dims):
        return list(shape)
    if isinstance(shape, (int,)):
        return [int(shape)]
    return [int(v) for v in shape]


class IHostMemory(bytes):
    """Serialized plans and caches: a bytes object with ``nbytes`` and ``dtype`` (buffer protocol on 3.11)."""

    _M: Any = None

    @property
    def nbytes(self) -> int:
        return len(self)

    @property
    def dtype(self) -> Any:
        return self._M.DataType.UINT8


_LETTER = {0: "F", 1: "E", 2: "W", 3: "I", 4: "V"}


def log(obj: Any, severity: str, msg: str) -> None:
    """Send ``msg`` to the logger behind ``obj`` (a Builder, Runtime, ... or a logger itself)."""
    logger = getattr(obj, "_logger", obj)
    if logger is None:
        return
    sev = getattr(type(obj)._M.Logger.Severity, severity)
    logger.log(sev, msg)


def default_log(severity: Any, msg: str) -> None:
    print(f"[TRT] [{_LETTER.get(int(severity), '?')}] {msg}", file=sys.stderr)


def check_enum(obj: Any, value: Any, enum_name: str, what: str) -> None:
    """pybind11 raises TypeError for an argument of the wrong enum type (e.g. a plain int)."""
    enum_cls = getattr(obj._M, enum_name)
    if not isinstance(value, enum_cls):
        raise TypeError(
            f"{what}(): incompatible function arguments. Expected tensorrt.{enum_name}, got {type(value).__name__} {value!r}"
        )
