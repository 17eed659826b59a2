"""Event-source filter patterns: the EventBridge subset the template's FilterCriteria use."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack.filters import matches, matches_any, validate_pattern
from devstack.plan import build_plan
from devstack.template import load
from tests.support.streams import stream_record

EVENT = {"pk": "EVENT#e1", "sk": "EVENT", "entity": "event", "type": "order.completed", "customer_id": "c_1"}
RESERVATION = {"pk": "SKU#s", "sk": "RES#r1", "entity": "reservation", "status": "held"}


def _router_patterns() -> list[dict[str, Any]]:
    plan = build_plan(load())
    source = next(s for s in plan.streams if s.function == "RouteEventsFunction")
    return [json.loads(p) for p in source.filters]


def test_router_filter_takes_event_inserts_and_modifies_but_not_other_entities() -> None:
    patterns = _router_patterns()
    assert matches_any(patterns, stream_record(EVENT))
    assert matches_any(patterns, stream_record(EVENT, {**EVENT, "customer_id": None}))
    assert not matches_any(patterns, stream_record({**EVENT, "entity": "profile"}))
    assert not matches_any(patterns, stream_record(None, EVENT))  # a REMOVE has no NewImage


def test_nested_keys_and_lists_of_exact_values() -> None:
    pattern = {"dynamodb": {"NewImage": {"entity": {"S": ["event", "merge"]}}}}
    assert matches(pattern, stream_record(EVENT))
    assert matches(pattern, stream_record({**EVENT, "entity": "merge"}))
    assert not matches(pattern, stream_record({**EVENT, "entity": "events"}))


def test_prefix_and_exists() -> None:
    pattern = {
        "eventName": ["MODIFY"],
        "dynamodb": {
            "NewImage": {"type": {"S": [{"prefix": "order."}]}, "customer_id": {"S": [{"exists": True}]}}
        },
    }
    old = {**EVENT, "customer_id": None}
    assert matches(pattern, stream_record(EVENT, old))
    assert not matches(pattern, stream_record({**EVENT, "customer_id": None}, old))  # no customer yet
    assert not matches(pattern, stream_record({**EVENT, "type": "email.opened"}, old))
    assert not matches(pattern, stream_record(EVENT))  # an INSERT


def test_exists_false_matches_a_missing_branch() -> None:
    pattern = {"dynamodb": {"OldImage": {"entity": {"S": [{"exists": False}]}}}}
    assert matches(pattern, stream_record(EVENT))  # an INSERT has no OldImage at all
    assert not matches(pattern, stream_record(EVENT, EVENT))


def test_ttl_removal_pattern_needs_the_service_identity() -> None:
    pattern = {
        "eventName": ["REMOVE"],
        "userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]},
        "dynamodb": {"OldImage": {"entity": {"S": ["reservation"]}, "status": {"S": ["held", "ready"]}}},
    }
    assert matches(pattern, stream_record(None, RESERVATION, ttl_delete=True))
    assert not matches(pattern, stream_record(None, RESERVATION))  # a user delete
    assert not matches(pattern, stream_record(None, {**RESERVATION, "status": "collected"}, ttl_delete=True))


def test_numbers_anything_but_suffix_and_case() -> None:
    record = {"body": {"qty": "5", "sku": "SKU-JACKET-M", "channel": "POS"}}
    assert matches({"body": {"qty": [{"numeric": [">", 0, "<=", 5]}]}}, record)
    assert not matches({"body": {"qty": [{"numeric": [">", 5]}]}}, record)
    assert matches({"body": {"qty": [5]}}, record)
    assert matches({"body": {"sku": [{"suffix": "-M"}]}}, record)
    assert matches({"body": {"channel": [{"equals-ignore-case": "pos"}]}}, record)
    assert matches({"body": {"channel": [{"anything-but": ["web", "app"]}]}}, record)
    assert not matches({"body": {"channel": [{"anything-but": "POS"}]}}, record)
    assert not matches({"body": {"missing": [{"anything-but": "x"}]}}, record)


def test_an_array_in_the_record_matches_when_any_element_does() -> None:
    assert matches({"tags": ["vip"]}, {"tags": ["new", "vip"]})
    assert not matches({"tags": ["vip"]}, {"tags": ["new"]})


def test_no_patterns_let_everything_through() -> None:
    assert matches_any([], {"anything": 1})


@pytest.mark.parametrize(
    "pattern",
    [
        {},
        {"a": "plain"},
        {"a": []},
        {"a": [{"cidr": "10.0.0.0/24"}]},
        {"a": [{"prefix": 1}]},
        {"a": [{"exists": "yes"}]},
        {"a": [{"numeric": [">"]}]},
        {"a": [{"prefix": "x", "suffix": "y"}]},
    ],
)
def test_unsupported_or_malformed_patterns_are_refused(pattern: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        validate_pattern(pattern)


def test_every_filter_in_the_template_is_understood() -> None:
    plan = build_plan(load())  # build_plan validates every pattern; this names the sources
    for text in [f for s in plan.streams for f in s.filters] + [f for s in plan.sqs for f in s.filters]:
        validate_pattern(json.loads(text))


scalars = st.one_of(st.text(max_size=8), st.integers(-1000, 1000), st.booleans(), st.none())
records = st.dictionaries(st.sampled_from(["a", "b", "c"]), scalars, min_size=1)


@settings(max_examples=100, deadline=None)
@given(records)
def test_a_record_matches_a_pattern_of_its_own_values(record: dict[str, Any]) -> None:
    pattern = {k: [v] for k, v in record.items()}
    validate_pattern(pattern)
    assert matches(pattern, record)
    assert not matches({k: [{"anything-but": v}] for k, v in record.items()}, record)
    assert matches({k: [{"exists": True}] for k in record}, record)
    assert not matches({"zz": [{"exists": True}]}, record)
