"""resolve_identity: SQS batch of routed events -> customers; bad or failing records reported alone."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from devstack.template import Resolver as StackResolver
from loyalty.errors import TransientError
from loyalty.eventlog.store import EventLog
from loyalty.routing.router import RoutedEvent
from tests.support.identity import attributed_to, attributions, event
from tests.support.lambdas import LambdaContext, load_event, load_function, sqs_event


@pytest.fixture
def fn(stack: StackResolver) -> Any:
    return load_function("resolve_identity")


def _body(ev: Any) -> str:
    return RoutedEvent(stage="recorded", event=ev).model_dump_json()


def test_a_batch_resolves_every_event_and_reports_only_the_malformed_one(
    fn: Any, lambda_context: LambdaContext
) -> None:
    # Given two recorded events of the same person and one malformed message
    first = event(("email", "ana@x.com"))
    second = event(("email", "ana@x.com"), ("phone", "612345678"), minutes=1)
    batch = sqs_event([_body(first), "{not json", _body(second)])
    # When the batch is handled
    response = fn.handler(batch, lambda_context)
    # Then only the malformed record is retried, and both events belong to one customer
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    owners = {attributed_to(e.event_id) for e in (first, second)}
    assert len(owners) == 1


def test_a_transient_failure_fails_the_record_so_sqs_retries_it(
    fn: Any, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.identity.store import IdentityStore

    def throttled(*_: Any, **__: Any) -> None:
        raise TransientError("throttled")

    monkeypatch.setattr(IdentityStore, "owners", throttled)
    ev = event(("email", "ana@x.com"))
    # a whole batch failing makes the invocation fail: every message returns to the queue
    with pytest.raises(BatchProcessingError):
        fn.handler(sqs_event([_body(ev)]), lambda_context)
    assert attributions(ev.event_id) == []


def test_the_sample_event_for_sam_local_invoke_resolves(fn: Any, lambda_context: LambdaContext) -> None:
    sample = load_event("sqs/identity_pos_sale.json")
    routed = RoutedEvent.model_validate_json(sample["Records"][0]["body"])
    EventLog().record(routed.event)
    assert fn.handler(sample, lambda_context) == {"batchItemFailures": []}
    assert attributed_to(routed.event.event_id).startswith("c_")
