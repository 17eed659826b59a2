"""Right to erasure: merged customers included, resumable after a crash, nothing personal left."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.template import Resolver as StackResolver
from loyalty import aws
from loyalty.identity.resolve import Resolver
from loyalty.identity.service import CustomerService
from loyalty.identity.store import IdentityStore
from loyalty.store.table import Table, deserialize
from tests.support.identity import event


def _everything(table: Table) -> list[dict[str, Any]]:
    pages = aws.client("dynamodb").get_paginator("scan").paginate(TableName=table.name)
    return [deserialize(i) for page in pages for i in page["Items"]]


def _merged_customer() -> tuple[str, str]:
    a = Resolver().resolve(
        event(("email", "ana@x.com"), profile={"first_name": "Ana", "last_name": "Garcia"})
    )
    b = Resolver().resolve(
        event(("phone", "612345678"), ("device_id", "dev-ana"), minutes=1, profile={"first_name": "Anita"})
    )
    Resolver().resolve(event(("email", "ana@x.com"), ("phone", "612345678"), minutes=2))
    assert a.customer_id
    assert b.customer_id
    return a.customer_id, b.customer_id


def test_erasing_a_merged_customer_erases_every_part_and_leaves_no_personal_data(
    stack: StackResolver,
) -> None:
    # Given a customer who absorbed another one, with points the points capability keeps
    survivor, absorbed = _merged_customer()
    Table().put(
        {
            "pk": f"CUST#{survivor}",
            "sk": "PTS#BALANCE",
            "entity": "points_balance",
            "customer_id": survivor,
            "available": 10,
        }
    )
    # When staff erase them through the absorbed id
    result = CustomerService().erase(absorbed)
    # Then both ids are erased, three identifiers freed, and nothing says Ana, her phone or device
    assert result.customer_id == survivor
    assert sorted(result.erased_ids) == sorted([survivor, absorbed])
    assert result.identifiers_freed == 3
    dump = json.dumps(_everything(Table()), default=str).lower()
    for personal in ("ana@x.com", "anita", "garcia", "612345678", "dev-ana"):
        assert personal not in dump, personal
    store = IdentityStore()
    assert {store.profile(c)["status"] for c in (survivor, absorbed)} == {"erased"}  # type: ignore[index]
    assert store.points_balance(survivor) is None


def test_a_crashed_erasure_is_completed_by_the_retry(
    stack: StackResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    survivor, _ = _merged_customer()
    calls = {"n": 0}
    original = IdentityStore.delete

    def flaky(self: IdentityStore, pk: str, sk: str) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("crash in the middle of an erasure")
        original(self, pk, sk)

    monkeypatch.setattr(IdentityStore, "delete", flaky)
    with pytest.raises(RuntimeError):
        CustomerService().erase(survivor)
    # meanwhile the customer is not active: events of its identifiers wait (retried by SQS)
    assert IdentityStore().profile(survivor)["status"] == "erasing"  # type: ignore[index]
    result = CustomerService().erase(survivor)
    assert (result.identifiers_freed, result.events_anonymised) == (3, 3)
    assert IdentityStore().collection(survivor) == [
        {
            "pk": f"CUST#{survivor}",
            "sk": "PROFILE",
            "entity": "profile",
            "customer_id": survivor,
            "status": "erased",
            "erased_at": result.erased_at,
        }
    ]
