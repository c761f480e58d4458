"""pybind11-style enums for the fake ``tensorrt`` module.

Members convert with ``int()`` (so ``1 << int(trt.BuilderFlag.X)`` works) but, like pybind11's
non-arithmetic enums, never compare equal to a plain int.
"""

from __future__ import annotations

import enum
from typing import Any


class TrtEnum(enum.Enum):
    """Base for every emulated TensorRT enum."""

    def __int__(self) -> int:
        return int(self.value)

    def __index__(self) -> int:
        return int(self.value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {self.value}>"

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.value))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.value == self.value  # type: ignore[attr-defined]

    def __lt__(self, other: Any) -> bool:
        return int(self) < int(other)


def make_enum(name: str, members: dict[str, int]) -> type[TrtEnum]:
    """An enum class named ``name`` with ``members`` (aliases allowed: equal values)."""
    factory: Any = TrtEnum
    cls: type[TrtEnum] = factory(name, list(members.items()), module="tensorrt", qualname=name)
    return cls
