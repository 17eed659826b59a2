"""Stock on moto: stock events/s, write units per stock event, and hot-SKU scaling with shards.

Part 1 applies a realistic mix of stock events (POS sales, web orders, returns, receipts, counts)
through the stock consumer's use case and reports events/s and DynamoDB write request units per
event, summed from ``ReturnConsumedCapacity``.

Part 2 is a flash sale on ONE SKU at one location, with 1, 2, 4 and 8 shards. DynamoDB caps a
single item (and, until it splits for heat, a partition) at 1,000 write units/s; moto has no such
limit and runs about a thousand requests/s in total on one core, so the limit is MODELLED: every
shard item gets a token bucket of ``ITEM_WRITES_PER_S`` conditional writes per second (a scaled-
down 1,000 WCU/s), and a write to an empty bucket is rejected as a throttle (a TransientError,
retried by the worker with the same order id, so it is applied once). Throughput should then grow
with the shard count until moto itself is the bottleneck, while stock never goes below zero and
exactly the stocked units are sold. What moto cannot show: real partition splits, adaptive
capacity, network latency, or TransactionConflict between concurrent transactions on one item.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

ITEM_WRITES_PER_S = 10.0
WORKERS = 8


class Buckets:
    """A token bucket per shard item: ``rate`` writes/s, a burst of a tenth of a second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, rate / 10)
        self.tokens: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()
        self.throttles = 0

    def take(self, keys: list[str]) -> float:
        """0 when every item had a token (one is spent), else seconds until the emptiest refills."""
        now = time.perf_counter()
        with self.lock:
            states = {k: self.tokens.get(k, (self.burst, now)) for k in keys}
            refreshed = {
                k: (min(self.burst, t + (now - at) * self.rate), now) for k, (t, at) in states.items()
            }
            self.tokens.update(refreshed)
            lowest = min(t for t, _ in refreshed.values())
            if lowest < 1.0:
                self.throttles += 1
                return (1.0 - lowest) / self.rate
            self.tokens.update({k: (t - 1.0, at) for k, (t, at) in refreshed.items()})
            return 0.0


def _throttled_error() -> type[Exception]:
    from loyalty.errors import TransientError

    class ThrottledError(TransientError):
        """A write refused by the modelled per-item limit; ``wait`` is when a token is back."""

        def __init__(self, wait: float) -> None:
            super().__init__(f"ProvisionedThroughputExceededException (modelled), retry in {wait:.3f}s")
            self.wait = wait

    return ThrottledError


def _shard_keys(kwargs: dict[str, Any]) -> list[str]:
    keys = []
    for action in kwargs.get("TransactItems", []):
        ((_, body),) = action.items()
        if "UpdateExpression" in body and body["Key"]["sk"]["S"].startswith("LOC#"):
            keys.append(body["Key"]["pk"]["S"] + "|" + body["Key"]["sk"]["S"])
    return keys


def _events(n: int) -> list[str]:
    from tests.support.stock import adjusted, at, counted, message, order, pos_sale, refund

    stores = ["MAD-SOL", "BCN-DIAG", "VLC-COL", "SEV-SIE"]
    skus = [f"SKU-{i:03d}" for i in range(25)]
    out = [message(adjusted(sku, loc, 50, at(0))) for sku in skus for loc in [*stores, "WEB-FULFILMENT"]]
    for i in range(n):
        sku, store = skus[i % len(skus)], stores[i % len(stores)]
        minute = 1 + i // 10
        kind = i % 10
        if kind < 5:
            out.append(message(pos_sale(f"T{i}", sku, 1 + i % 2, store, at(minute))))
        elif kind < 8:
            out.append(message(order(f"W{i}", [(sku, 1)], "WEB-FULFILMENT", when=at(minute))))
        elif kind == 8:
            out.append(message(refund(f"T{i - 8}", sku, 1, store, at(minute))))
        else:
            out.append(message(counted(sku, store, 40, at(minute - 1))))
    return out


def _throughput(n: int) -> dict[str, Any]:
    from loyalty.store import table as table_mod
    from tests.support.stock import apply_message

    bodies = _events(n)
    seed, bench = bodies[:125], bodies[125:]
    for body in seed:
        apply_message(body)
    table_mod.CAPACITY = table_mod.Capacity()
    started, cpu_started = time.perf_counter(), time.process_time()
    for body in bench:
        apply_message(body)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    capacity = table_mod.CAPACITY
    table_mod.CAPACITY = None
    return {
        "stock_events": len(bench),
        "stock_events_per_s": round(len(bench) / elapsed, 1),
        "stock_events_per_cpu_s": round(len(bench) / cpu, 1),
        "write_units_per_stock_event": round(capacity.write_units / len(bench), 2),
        "read_units_per_stock_event": round(capacity.read_units / len(bench), 2),
        "calls": capacity.calls,
    }


def _flash_sale(shards: int, stock: int, demand: int) -> dict[str, Any]:
    from loyalty.stock import model
    from loyalty.stock.service import StockService
    from loyalty.stock.store import StockStore
    from loyalty.store.table import Table

    sku, loc = f"SKU-FLASH-{shards}", "WEB-FULFILMENT"
    store = StockStore()
    store.move(sku, loc, stock, at=model.stamp(time_at(0)), key="seed", reason="receipt")
    StockService().configure_sku(sku, None, shards)
    buckets = Buckets(ITEM_WRITES_PER_S)
    Throttled: Any = _throttled_error()
    original = Table._call

    def limited(self: Table, op: str, **kwargs: Any) -> Any:
        if op == "transact_write_items":
            keys = _shard_keys(kwargs)
            wait = buckets.take(keys) if keys and keys[0].startswith(f"SKU#{sku}|") else 0.0
            if wait:
                raise Throttled(wait)
        return original(self, op, **kwargs)

    orders = list(range(demand))
    lock = threading.Lock()
    taken: list[int] = []
    barrier = threading.Barrier(WORKERS)

    def worker() -> None:
        barrier.wait()
        while True:
            with lock:
                if not orders:
                    return
                i = orders.pop()
            while True:
                try:
                    applied = store.move(
                        sku,
                        loc,
                        -1,
                        at=model.stamp(time_at(1)),
                        key=f"ord:{i}",
                        reason="flash",
                        active=shards,
                    )
                except Throttled as err:  # the SDK would back off and retry: same order id, applied once
                    time.sleep(err.wait * (1 + secrets.randbelow(50) / 100))
                    continue
                with lock:
                    taken.append(-applied.on_hand_delta)
                break

    Table._call = limited  # type: ignore[method-assign]
    try:
        threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    finally:
        Table._call = original  # type: ignore[method-assign]
    return _verdict(store, sku, loc, shards, stock, demand, sum(taken), elapsed, buckets.throttles)


def _verdict(
    store: Any,
    sku: str,
    loc: str,
    shards: int,
    stock: int,
    demand: int,
    sold: int,
    elapsed: float,
    throttles: int,
) -> dict[str, Any]:
    """Check the never-oversold guarantee and report the run."""
    from loyalty.stock import model

    shard_items = store.shards(sku, loc)
    figures = model.LocationStock.of(loc, shard_items)
    assert sold == min(stock, demand), (sold, stock, demand)
    assert figures.on_hand == stock - sold >= 0
    assert all(s.on_hand >= 0 and s.available >= 0 for s in shard_items)
    return {
        "shards": shards,
        "orders": demand,
        "stocked_units": stock,
        "sold_units": sold,
        "shortfall_orders": demand - sold,
        "seconds": round(elapsed, 2),
        "orders_per_s": round(demand / elapsed, 1),
        "modelled_throttles": throttles,
        "final_on_hand": figures.on_hand,
        "never_oversold": True,
    }


def time_at(minutes: int) -> Any:
    from tests.support.stock import at

    return at(minutes)


def main(quick: bool = True) -> dict[str, Any]:
    from bench.common import emulated
    from loyalty.settings import get_settings

    n = 100 if quick else 3000
    demand = 40 if quick else 400
    with emulated("ApplyStockEventsFunction"):
        figures: dict[str, Any] = {"events": _throughput(n)}
        runs = [_flash_sale(s, stock=demand - 5, demand=demand) for s in (1, 2, 4, 8)]
        get_settings.cache_clear()
    base = runs[0]["orders_per_s"]
    figures["hot_sku"] = {
        "modelled_item_writes_per_s": ITEM_WRITES_PER_S,
        "workers": WORKERS,
        "runs": runs,
        "speedup_vs_1_shard": {r["shards"]: round(r["orders_per_s"] / base, 2) for r in runs},
    }
    return figures


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(root), str(root / "layers" / "loyalty")]
    print(json.dumps(main(quick="--full" not in sys.argv), indent=2))
