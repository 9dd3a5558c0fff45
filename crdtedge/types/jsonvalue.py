"""JSON values as stored in Yjs: checked on the way in, normalized on the way out.

Yjs has one number type (a float64) and pycrdt hands every number back as a `float`, even
one Python wrote as an `int`. So integral numbers read back as `int`, and integers a float
cannot hold exactly (beyond 2**53 - 1) are refused on write.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeAlias

from .errors import LayoutError, SchemaError

JSONValue: TypeAlias = (
    bool | int | float | str | list["JSONValue"] | tuple["JSONValue", ...] | dict[str, "JSONValue"]
) | None

MAX_SAFE_INTEGER = 2**53 - 1


def check_json(value: object, where: str) -> Any:
    """`value` as a plain JSON value for Yjs (tuples become lists), or a `SchemaError`."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise SchemaError(f"{where}: {value} is beyond 2**53 - 1 and cannot be stored exactly")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SchemaError(f"{where}: {value} is not a finite number")
        return value
    if isinstance(value, list | tuple):
        return [check_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        checked = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SchemaError(f"{where}: object keys must be str, got {key!r}")
            checked[key] = check_json(item, f"{where}[{key!r}]")
        return checked
    raise SchemaError(f"{where}: {type(value).__name__} {value!r} is not a JSON value")


def from_yjs(value: Any) -> Any:
    """A stored JSON value with integral numbers as `int` (recursively)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
        return int(value)
    if isinstance(value, list):
        return [from_yjs(item) for item in value]
    if isinstance(value, dict):
        return {key: from_yjs(item) for key, item in value.items()}
    return value


def canonical(value: Any) -> str:
    """The identity of a JSON value: equal values (1 and 1.0 alike, keys in any order)
    give equal strings; `True` and `1` do not."""
    return json.dumps(from_yjs(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def read_int(value: Any, where: str) -> int:
    """A stored integral number as `int`, or a `LayoutError`."""
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and float(value).is_integer()
        and abs(value) <= MAX_SAFE_INTEGER
    ):
        return int(value)
    raise LayoutError(f"{where}: expected an integer, found {value!r}")


def read_number(value: Any, where: str) -> float:
    """A stored finite number as `float`, or a `LayoutError`."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise LayoutError(f"{where}: expected a number, found {value!r}")


def check_number(value: object, where: str) -> float:
    """A finite number given by the caller (not a bool), or a `SchemaError`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(check_json(value, where))
    raise SchemaError(f"{where}: expected a number, got {type(value).__name__} {value!r}")


def check_count(value: object, where: str) -> int:
    """A non-negative `int` given by the caller (an amount to count), or an error."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{where}: expected an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{where}: expected a non-negative int, got {value}")
    return int(check_json(value, where))
