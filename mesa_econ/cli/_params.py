"""The one ``KEY=VALUE`` parser of the ``mesa-econ`` commands, and their argument types.

Every option of the form ``--param NAME=V1,V2``, ``--set KEY=VALUE``, ``--model KEY=VALUE``,
``--fix NAME=VALUE`` or ``--bound NAME=LOW:HIGH`` goes through :func:`parse_pairs` or
:func:`parse_lists`. A bad item raises :class:`ParamError` (a ``ValueError``) whose message
starts with the option and the item as typed, e.g.
``--param kappa=abc: kappa='abc' is invalid: expected a number (the default is 0.0)``;
the router prints it as one ``error:`` line and exits with status 2.

Values are read by :func:`parse_value`: integers, floats (``1e-3``, ``inf``), ``true`` /
``false``, ``none`` / ``null``, JSON lists (as tuples) and objects, else the text itself.
Given ``defaults`` (keyword → default value, see :func:`signature_defaults` and
:func:`dataclass_defaults`), keys must be among them, and a value that stayed text, or a
boolean, is refused where the default is a number (and anything but a boolean where it is
a boolean): the mistakes a parser can see. Ranges are the model's and configs' to check.

This module imports nothing beyond the standard library, so ``mesa-econ --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["ParamError", "dataclass_defaults", "int_at_least", "parse_interval", "parse_lists",
           "parse_pairs", "parse_seeds", "parse_value", "signature_defaults", "split_pair",
           "split_values"]

_WORDS = {"true": True, "false": False, "none": None, "null": None}


class ParamError(ValueError):
    """A ``KEY=VALUE`` item the parser refuses; the message names the option and the item."""


def parse_value(text: str) -> Any:
    """One value as typed on the command line.

    Args:
        text: the text after ``=`` (or one comma-separated element of it).

    Returns:
        ``bool`` for true/false, ``None`` for none/null (any case), ``int`` or ``float``
        for numbers (``3``, ``-5``, ``1e-3``, ``inf``), a tuple for a JSON list
        (``[64, 64]``), a dict for a JSON object, a str for a JSON string (``"3"``),
        otherwise the stripped text itself.

    Raises:
        ValueError: text starting with ``[``, ``{`` or ``"`` that is not valid JSON.
    """
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in _WORDS:
        return _WORDS[lowered]
    for cast in (int, float):
        try:
            return cast(stripped)
        except ValueError:
            pass
    if stripped[:1] in ("[", "{", '"'):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{stripped!r} is invalid: expected valid JSON ({exc})") from None
        return tuple(value) if isinstance(value, list) else value
    return stripped


def split_pair(item: str, option: str, expected: str = "KEY=VALUE") -> tuple[str, str]:
    """``"num-steps=64"`` → ``("num_steps", "64")``; dashes in the key become underscores.

    Raises:
        ParamError: no ``=``, or an empty key or value.
    """
    key, sep, text = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key or not text.strip():
        raise ParamError(f"{option} {item}: {item!r} is invalid: expected {expected}")
    return key, text


def split_values(text: str) -> list[str]:
    """Split on the commas outside brackets: ``"[1,2],[3,4]"`` → ``["[1,2]", "[3,4]"]``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _check(key: str, value: Any, defaults: Mapping[str, Any] | None, where: str) -> None:
    """Refuse unknown keys and values of the wrong kind (see the module docstring)."""
    if defaults is None:
        return
    if key not in defaults:
        raise ParamError(f"{where}: {key} is invalid: expected one of {sorted(defaults)}")
    default = defaults[key]
    if value is None or default is None:
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParamError(f"{where}: {key}={value!r} is invalid: expected true or false "
                             f"(the default is {str(default).lower()})")
    elif isinstance(default, int | float) and isinstance(value, str | bool):
        raise ParamError(f"{where}: {key}={value!r} is invalid: expected a number "
                         f"(the default is {default!r})")


def _convert(text: str, convert: Callable[[str], Any], where: str) -> Any:
    try:
        return convert(text)
    except ValueError as exc:
        raise ParamError(f"{where}: {exc}") from None


def parse_pairs(items: Iterable[str], option: str, *,
                defaults: Mapping[str, Any] | None = None,
                convert: Callable[[str], Any] = parse_value,
                expected: str = "KEY=VALUE") -> dict[str, Any]:
    """``["a=1", "b=[64, 64]"]`` → ``{"a": 1, "b": (64, 64)}``.

    Args:
        items: the option's values as typed (an ``action="append"`` list).
        option: the option's name for messages, e.g. ``"--set"``.
        defaults: allowed keys and their defaults (None: any key, no kind check).
        convert: text → value (default :func:`parse_value`); raises ValueError on bad text.
        expected: the item's form for messages.

    Raises:
        ParamError: a malformed item, an unknown key or a value of the wrong kind.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, text = split_pair(item, option, expected)
        where = f"{option} {item}"
        value = _convert(text, convert, where)
        _check(key, value, defaults, where)
        out[key] = value
    return out


def parse_lists(items: Iterable[str], option: str, *,
                defaults: Mapping[str, Any] | None = None) -> dict[str, list[Any]]:
    """``["kappa=0.001,0.01", "nu=0"]`` → ``{"kappa": [0.001, 0.01], "nu": [0]}``.

    Commas inside brackets do not split (``hidden=[32,32],[64,64]`` gives two tuples).

    Raises:
        ParamError: a malformed item, an empty element, an unknown key or a value of the
            wrong kind.
    """
    out: dict[str, list[Any]] = {}
    for item in items:
        key, text = split_pair(item, option, "NAME=V1,V2,...")
        where = f"{option} {item}"
        values = []
        for part in split_values(text):
            if not part.strip():
                raise ParamError(f"{where}: {key}={text!r} is invalid: expected "
                                 "comma-separated values, none of them empty")
            value = _convert(part, parse_value, where)
            _check(key, value, defaults, where)
            values.append(value)
        out[key] = values
    return out


def parse_interval(text: str) -> tuple[float, float]:
    """``"1e-5:1e-3"`` → ``(1e-5, 1e-3)`` (a ``convert`` for :func:`parse_pairs`)."""
    low, sep, high = text.partition(":")
    try:
        if not sep:
            raise ValueError
        bounds = (float(low), float(high))
    except ValueError:
        raise ValueError(f"{text!r} is invalid: expected LOW:HIGH, e.g. 1e-5:1e-3") from None
    if not all(math.isfinite(b) for b in bounds):
        raise ValueError(f"{text!r} is invalid: expected finite LOW:HIGH")
    return bounds


def parse_seeds(text: str) -> int | list[int]:
    """An argparse type: ``"3"`` → 3 replicates, ``"0,5,9"`` → those seeds."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",")]
            if all(s >= 0 for s in seeds):
                return seeds
        elif int(text) >= 1:
            return int(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"{text!r} is invalid: expected a number of replicates >= 1 or a comma-separated "
        "list of integer seeds >= 0")


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``; argparse names the option in its error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is invalid: expected an integer >= {low}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is invalid: expected an integer >= {low}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def signature_defaults(func: Callable[..., Any]) -> dict[str, Any]:
    """Keyword → default of a callable's parameters (None where it has no default)."""
    params = inspect.signature(func).parameters.values()
    return {p.name: None if p.default is inspect.Parameter.empty else p.default
            for p in params if p.name != "self"
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def dataclass_defaults(cls: type) -> dict[str, Any]:
    """Field → default of a dataclass (its factory's value; None where it has none)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = None
    return out
