"""Event-source filter patterns (Lambda ``FilterCriteria``), matched by moto's EventBridge matcher.

Matching is ``moto.events.models.EventPattern`` (nested keys, lists of exact values, an array in
the record matching when any element does, ``exists``, ``prefix``, ``suffix``,
``equals-ignore-case``, ``anything-but``, ``numeric``). What stays ours:

- ``validate_pattern``: the operators Lambda event filtering accepts (no ``cidr``, one operator
  per matcher, well-typed arguments); the plan refuses to run a template whose filter it would
  misread.
- Numbers written as strings (DynamoDB ``N`` values, SQS bodies from form posts) compare as
  numbers, as Lambda compares them: both sides are read as numbers before matching.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from moto.events.models import EventPattern

_OPERATORS = frozenset({"exists", "prefix", "suffix", "equals-ignore-case", "anything-but", "numeric"})
_NUMERIC_OPS = frozenset({"<", "<=", "=", ">", ">="})
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def validate_pattern(pattern: Any) -> None:
    """Raise ``ValueError`` unless ``pattern`` only uses what Lambda event filtering accepts."""
    if not isinstance(pattern, dict) or not pattern:
        raise ValueError("a pattern is a non-empty JSON object")
    for key, value in pattern.items():
        if isinstance(value, dict):
            validate_pattern(value)
        elif isinstance(value, list):
            if not value:
                raise ValueError(f"{key}: empty list of values")
            for matcher in value:
                _validate_matcher(key, matcher)
        else:
            raise ValueError(f"{key}: a value must be an object or a list, got {value!r}")


_ARG_TYPES: dict[str, type | tuple[type, ...]] = {
    "exists": bool,
    "prefix": str,
    "suffix": str,
    "equals-ignore-case": str,
}


def _validate_matcher(key: str, matcher: Any) -> None:
    if not isinstance(matcher, dict):
        return
    if len(matcher) != 1:
        raise ValueError(f"{key}: one operator per matcher, got {sorted(matcher)}")
    ((op, arg),) = matcher.items()
    if op not in _OPERATORS:
        raise ValueError(f"{key}: operator {op!r} is not supported by Lambda event filtering")
    if op in _ARG_TYPES and not isinstance(arg, _ARG_TYPES[op]):
        raise ValueError(f"{key}: {op} takes a {_ARG_TYPES[op]}")
    if op == "numeric":
        pairs = list(zip(arg[::2], arg[1::2], strict=False)) if isinstance(arg, list) else []
        if not pairs or len(arg) % 2:
            raise ValueError(f"{key}: numeric takes [op, number, ...]")
        for cmp, number in pairs:
            if cmp not in _NUMERIC_OPS or isinstance(number, bool) or not isinstance(number, int | float):
                raise ValueError(f"{key}: bad numeric comparison {[cmp, number]}")


def _numbers(value: Any) -> Any:
    """``value`` with numbers written as strings read as numbers (booleans left alone)."""
    if isinstance(value, Mapping):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return float(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def matches(pattern: Mapping[str, Any], record: Any) -> bool:
    """Whether ``record`` (a Lambda-shaped event record) satisfies ``pattern``."""
    if not isinstance(record, Mapping):
        return False
    return bool(EventPattern(None, _numbers(pattern)).matches_event(_numbers(record)))


def matches_any(patterns: Sequence[Mapping[str, Any]], record: Any) -> bool:
    """No patterns: everything passes; otherwise the record must match one of them (OR)."""
    return not patterns or any(matches(p, record) for p in patterns)


__all__ = ["matches", "matches_any", "validate_pattern"]
