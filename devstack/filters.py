"""Event-source filter patterns (Lambda ``FilterCriteria``), the EventBridge matching subset.

Supported: nested keys; lists of exact values (strings, numbers, booleans, null; any one must
match; an array in the record matches when any element does); ``{"exists": bool}``;
``{"prefix": s}``; ``{"suffix": s}``; ``{"equals-ignore-case": s}``; ``{"anything-but": v | [v..]}``;
``{"numeric": [">", 0, "<=", 5]}``. Anything else is rejected by ``validate_pattern`` (the plan
refuses to run a template whose filter the devstack would misread).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()
_OPERATORS = frozenset({"exists", "prefix", "suffix", "equals-ignore-case", "anything-but", "numeric"})
_NUMERIC_OPS = frozenset({"<", "<=", "=", ">", ">="})


def validate_pattern(pattern: Any) -> None:
    """Raise ``ValueError`` unless ``pattern`` only uses what ``matches`` implements."""
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


def _validate_matcher(key: str, matcher: Any) -> None:
    if not isinstance(matcher, dict):
        return
    if len(matcher) != 1:
        raise ValueError(f"{key}: one operator per matcher, got {sorted(matcher)}")
    ((op, arg),) = matcher.items()
    if op not in _OPERATORS:
        raise ValueError(f"{key}: operator {op!r} is not supported locally")
    if op == "exists" and not isinstance(arg, bool):
        raise ValueError(f"{key}: exists takes true or false")
    if op in {"prefix", "suffix", "equals-ignore-case"} and not isinstance(arg, str):
        raise ValueError(f"{key}: {op} takes a string")
    if op == "numeric":
        if not isinstance(arg, list) or len(arg) % 2 or not arg:
            raise ValueError(f"{key}: numeric takes [op, number, ...]")
        for i in range(0, len(arg), 2):
            if arg[i] not in _NUMERIC_OPS or not isinstance(arg[i + 1], int | float):
                raise ValueError(f"{key}: bad numeric comparison {arg[i : i + 2]}")


def matches(pattern: Mapping[str, Any], record: Any) -> bool:
    """Whether ``record`` (a Lambda-shaped event record) satisfies ``pattern``."""
    for key, expected in pattern.items():
        actual = record.get(key, _MISSING) if isinstance(record, Mapping) else _MISSING
        if isinstance(expected, Mapping):
            if actual is _MISSING or not isinstance(actual, Mapping):
                if not _accepts_missing(expected):
                    return False
                continue
            if not matches(expected, actual):
                return False
        elif not _match_values(expected, actual):
            return False
    return True


def matches_any(patterns: list[Mapping[str, Any]], record: Any) -> bool:
    """No patterns: everything passes; otherwise the record must match one of them (OR)."""
    return not patterns or any(matches(p, record) for p in patterns)


def _accepts_missing(pattern: Mapping[str, Any]) -> bool:
    return all(
        _accepts_missing(v) if isinstance(v, Mapping) else _match_values(v, _MISSING)
        for v in pattern.values()
    )


def _match_values(matchers: list[Any], actual: Any) -> bool:
    if isinstance(actual, list):
        return any(_match_one(m, a) for m in matchers for a in actual)
    return any(_match_one(m, actual) for m in matchers)


def _match_one(matcher: Any, actual: Any) -> bool:
    if not isinstance(matcher, dict):
        return actual is not _MISSING and _equal(matcher, actual)
    ((op, arg),) = matcher.items()
    if op == "exists":
        return (actual is not _MISSING) is arg
    if actual is _MISSING:
        return False
    if op == "prefix":
        return isinstance(actual, str) and actual.startswith(arg)
    if op == "suffix":
        return isinstance(actual, str) and actual.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(actual, str) and actual.lower() == arg.lower()
    if op == "anything-but":
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_equal(e, actual) for e in excluded)
    if op == "numeric":
        return _numeric(arg, actual)
    return False


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None or actual is None:
        return expected is actual or (expected == actual and type(expected) is type(actual))
    if isinstance(expected, int | float):
        number = _as_number(actual)
        return number is not None and number == expected
    return bool(expected == actual)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _numeric(conditions: list[Any], actual: Any) -> bool:
    number = _as_number(actual)
    if number is None:
        return False
    checks = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        "=": lambda a, b: a == b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return all(checks[conditions[i]](number, conditions[i + 1]) for i in range(0, len(conditions), 2))
