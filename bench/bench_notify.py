"""Notification fan-out and senders on moto: intents/s and DynamoDB request units per intent.

Every customer gets two intents in one stream batch: "points earned" (transactional: a lot
turning available) and "points expiring" (marketing); then the whole stream is replayed (the
dedupe cost), then the queued messages go through the email/SMS senders in outbox mode.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def main(quick: bool = True) -> dict[str, Any]:
    from bench.common import emulated
    from loyalty.settings import get_settings
    from loyalty.store import table as table_mod
    from tests.support import notify as fx
    from tests.support.lambdas import LambdaContext, load_function
    from tests.support.streams import stream_event, stream_record

    customers = 25 if quick else 1000
    with emulated("FanoutNotificationsFunction", "SendEmailFunction") as resolver:
        os.environ.update({"QUIET_HOURS_START": "0", "QUIET_HOURS_END": "0", "DELIVERY_MODE": "outbox"})
        get_settings.cache_clear()
        table = table_mod.Table()
        records = []
        for i in range(customers):
            cid = f"c_bench{i:05d}"
            fx.seed_customer(table, cid, granted={"email": True, "sms": True}, preferred="email")
            records.append(
                stream_record(fx.lot(cid, "T1", "available"), fx.lot(cid, "T1", "pending"), seq=2 * i)
            )
            records.append(stream_record(fx.points_expiring(cid), None, seq=2 * i + 1))
        batches = [stream_event(*records[i : i + 50]) for i in range(0, len(records), 50)]
        fanout = load_function("fanout_notifications")
        ctx = LambdaContext()

        table_mod.CAPACITY = first = table_mod.Capacity()
        started = time.perf_counter()
        for batch in batches:
            assert fanout.handler(batch, ctx) == {"batchItemFailures": []}
        fanout_s = time.perf_counter() - started

        table_mod.CAPACITY = replay = table_mod.Capacity()
        started = time.perf_counter()
        for batch in batches:
            assert fanout.handler(batch, ctx) == {"batchItemFailures": []}
        replay_s = time.perf_counter() - started

        sent, unique, send_s, sending = _send_all(resolver, customers)
        table_mod.CAPACITY = None
    intents = 2 * customers
    return {
        "customers": customers,
        "intents": intents,
        "fanout_intents_per_s": round(intents / fanout_s, 1),
        "fanout_read_units_per_intent": round(first.read_units / intents, 2),
        "fanout_write_units_per_intent": round(first.write_units / intents, 2),
        "replay_intents_per_s": round(intents / replay_s, 1),
        "replay_units_per_intent": round(
            (replay.read_units + replay.write_units + replay.failed_writes) / intents, 2
        ),
        "messages_sent": sent,
        "distinct_messages_queued": unique,
        "sender_messages_per_s": round(unique / send_s, 1),
        "sender_units_per_message": round((sending.read_units + sending.write_units) / max(sent, 1), 2),
        "note": "moto in process on one core; transaction units computed from item sizes (2 per KB)",
    }


def _send_all(resolver: Any, customers: int) -> tuple[int, int, float, Any]:
    """Drain the email and SMS queues through their senders (outbox): (sent, queued, seconds, capacity)."""
    from loyalty import aws
    from loyalty.settings import get_settings
    from loyalty.store import table as table_mod
    from tests.support.lambdas import LambdaContext, load_function, sqs_event

    ctx = LambdaContext()
    sqs = aws.client("sqs")
    bodies: list[tuple[str, str]] = []
    for channel, logical in (("email", "NotifyEmailQueue"), ("sms", "NotifySmsQueue")):
        url = resolver.refs[logical]
        while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            bodies.extend((channel, m["Body"]) for m in msgs)
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(msgs)],
            )
    unique = {(c, json.loads(b)["message_id"]) for c, b in bodies}
    sender = load_function("send_notification")
    table_mod.CAPACITY = sending = table_mod.Capacity()
    started = time.perf_counter()
    for channel, body in bodies:
        os.environ["NOTIFY_CHANNEL"] = channel
        get_settings.cache_clear()
        assert sender.handler(sqs_event([body]), ctx) == {"batchItemFailures": []}
    send_s = time.perf_counter() - started
    table_mod.CAPACITY = None
    table = table_mod.Table()
    sent = sum(
        1 for i in range(customers) for _ in table.query_all(f"CUST#c_bench{i:05d}", sk_prefix="NOTIF#OUT#")
    )
    return sent, len(unique), send_s, sending


if __name__ == "__main__":
    print(json.dumps(main(quick=False), indent=2))
