"""Hot keys: DynamoDB units per partition key under the mixed workload, and the event rate it holds.

The workload and the metering are in ``bench/pipeline.py`` and ``bench/meter.py`` (the mix is
``pipeline.MIX``). A key is:

- **traffic-wide** when its load grows with the platform's total traffic (its key names no
  customer, SKU, reservation or event: ``KPI#<day>``, ``EVDAY#<day>``, ``PTSDUE#<day>#<n>``...);
  a write-sharded family (``...#<n>``) spreads by a hash, so at the rates that matter each of its
  shards carries the family's load divided by its shard count (``SHARDS``; the busiest shard of the
  sample is reported too);
- **per-entity** when it names one customer, identifier, SKU, reservation or event: its load is
  bounded by that entity's own activity, whatever the total (a SKU in a flash sale is the one
  case that is not: ``sku_order_lines_per_s`` says how many order lines one SKU takes per second).

``sustainable_events_per_s`` is the event rate at which the busiest traffic-wide key reaches
1,000 WCU/s or 3,000 RCU/s (DynamoDB's per-partition limits).
"""

from __future__ import annotations

import json
import math
from typing import Any

from bench.meter import Meter, key_family

WCU_LIMIT, RCU_LIMIT = 1000, 3000
ENTITY_PREFIXES = frozenset(
    {"CUST", "IDENT", "EVENT", "SKU", "RES", "STKORD", "MERGE", "MERGEREVIEW", "ERASURE", "SHOP"}
)


def shards() -> dict[str, int]:
    """Write-sharded key families and their shard counts, from the code that shards them."""
    from loyalty.points import model as points_model

    out = {f"{p}#<day>#<n>": points_model.SHARDS for p in ("PTSDUE", "PTSEXP", "PTSTIER")}
    try:
        from loyalty.analytics.kpis import KPI_SHARDS
        from loyalty.eventlog.store import EVDAY_SHARDS
    except ImportError:  # before the re-keying
        return out
    out["EVDAY#<day>#<n>"] = EVDAY_SHARDS
    out["EVLIST#<day>#<n>"] = EVDAY_SHARDS  # the day index's listings (issue 16, costident)
    out["KPI#<n>"] = KPI_SHARDS
    return out


def scope(key: str) -> str:
    return "per-entity" if key.split("#", 1)[0] in ENTITY_PREFIXES else "traffic-wide"


def analyse(meter: Meter, events: int) -> dict[str, Any]:
    sharded = shards()
    families: dict[tuple[str, str], dict[str, Any]] = {}
    keys = set(meter.wcu) | set(meter.rcu)
    for index, key in keys:
        fam = families.setdefault(
            (index, key_family(key)), {"keys": 0, "wcu": 0.0, "rcu": 0.0, "max_wcu": 0.0, "max_rcu": 0.0}
        )
        w, r = meter.wcu[(index, key)], meter.rcu[(index, key)]
        fam["keys"] += 1
        fam["wcu"] += w
        fam["rcu"] += r
        fam["max_wcu"] = max(fam["max_wcu"], w)
        fam["max_rcu"] = max(fam["max_rcu"], r)
    report: dict[str, Any] = {}
    sustainable = entity_bound = math.inf
    for (index, family), fam in sorted(families.items(), key=lambda kv: -kv[1]["wcu"]):
        n = sharded.get(family)
        per_key_w = fam["wcu"] / n if n else fam["max_wcu"]
        per_key_r = fam["rcu"] / n if n else fam["max_rcu"]
        w, r = per_key_w / events, per_key_r / events
        rate = min(WCU_LIMIT / w if w else math.inf, RCU_LIMIT / r if r else math.inf)
        where = scope(family)
        report[f"{index}:{family}"] = {
            "scope": where,
            "keys_seen": fam["keys"],
            "shards": n,
            "wcu_per_1000_events": round(fam["wcu"] / events * 1000, 2),
            "rcu_per_1000_events": round(fam["rcu"] / events * 1000, 2),
            "busiest_key_wcu_per_1000_events": round(fam["max_wcu"] / events * 1000, 2),
            "per_key_wcu_per_1000_events": round(w * 1000, 2),
            "per_key_rcu_per_1000_events": round(r * 1000, 2),
            "saturates_at_events_per_s": None if math.isinf(rate) else round(rate),
        }
        if where == "traffic-wide":
            sustainable = min(sustainable, rate)
        else:
            entity_bound = min(entity_bound, rate)
    hottest = []
    for row in meter.per_key(events):
        row["scope"] = scope(row["key"])
        row["family"] = key_family(row["key"])
        hottest.append(row)
    hottest.sort(
        key=lambda row: (
            row["scope"] != "traffic-wide",
            -row["wcu_per_1000_events"],
            -row["rcu_per_1000_events"],
        )
    )
    traffic_wide = [row for row in hottest if row["scope"] == "traffic-wide"]
    return {
        "sustainable_events_per_s": round(sustainable),
        "sustainable_events_per_s_traffic_wide_keys": round(sustainable),
        "per_entity_keys_extrapolated_events_per_s": round(entity_bound),
        "families": report,
        "hottest_keys": traffic_wide[:10],
        "hottest_keys_all": hottest[:10],
    }


def sku_lines_limit(meter: Meter, info: dict[str, Any]) -> float | None:
    """Order lines per second one SKU takes before its partition saturates (flash sale)."""
    lines = info.get("order_lines_by_sku") or {}
    units = [meter.wcu[("table", f"SKU#{sku}")] / n for sku, n in lines.items() if n]
    return round(WCU_LIMIT / max(units)) if units else None


def main(quick: bool = True) -> dict[str, Any]:
    from bench import pipeline

    meter, info = pipeline.shared_run(quick)
    out = analyse(meter, info["events"])
    out["events"] = info["events"]
    out["mix"] = info["mix"]
    out["mix_weights_per_100"] = pipeline.MIX
    out["sku_order_lines_per_s"] = sku_lines_limit(meter, info)
    out["hottest_per_entity_keys"] = [
        row for row in meter.per_key(info["events"]) if scope(row["key"]) == "per-entity"
    ][:5]
    out["headline"] = (
        "sustainable_events_per_s counts the keys whose load grows with total traffic (traffic-wide: "
        "KPI shards, the sharded event-day index, the points due/expiry/tier indexes, rules); a "
        "write-sharded family is charged its load divided by its shard count"
    )
    out["per_entity_note"] = (
        "per-entity keys (one customer, identifier, SKU, reservation, order or event) carry only that "
        "entity's own activity: per_entity_keys_extrapolated_events_per_s is the rate at which the "
        "busiest entity of this sample would saturate IF it kept its share of all traffic as traffic "
        "grows; with a population that grows with traffic it does not (one customer buys a few times "
        "a day), so it is no limit of the platform; sku_order_lines_per_s is the one real per-entity "
        "bound: order lines per second one SKU takes (a flash sale on one SKU)"
    )
    out["note"] = "units by DynamoDB's billing rule from every request of the run (bench/meter.py)"
    return out


if __name__ == "__main__":
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(root), str(root / "layers/loyalty")]
    print(json.dumps(main(quick="--full" not in sys.argv), indent=2))
