"""Tiers on qualifying points (earned minus reversed) over a rolling 12 months of purchase time.

Qualifying points are kept per purchase month (``occurred_at``, not arrival) on the balance, so a
late order counts in the month it happened and drops out 12 months after it. Upgrades happen at
once (in the transaction that earned the points); downgrades only in the scheduled review, after
the customer stayed below their tier for a grace period.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from loyalty.customers import customer_pk
from loyalty.points.model import TIER_CHANGE_ENTITY, TIERS, Balance, tier_change_sk
from loyalty.store.table import Item

THRESHOLDS: dict[str, int] = {"bronze": 0, "silver": 1000, "gold": 5000}
WINDOW_MONTHS = 12


def _month_index(month: str) -> int:
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def qualifying_points(buckets: dict[str, int], now: datetime) -> int:
    """Points of purchases in the current month and the 11 before it."""
    current = now.year * 12 + now.month - 1
    return sum(v for m, v in buckets.items() if 0 <= current - _month_index(m) < WINDOW_MONTHS)


def tier_for(points: int) -> str:
    return max((t for t in TIERS if points >= THRESHOLDS[t]), key=TIERS.index)


def _next_month(now: datetime) -> date:
    return date(now.year + now.month // 12, now.month % 12 + 1, 1)


def _change(balance: Balance, to_tier: str, points: int, now: datetime) -> Item:
    item: Item = {
        "pk": customer_pk(balance.customer_id),
        "sk": tier_change_sk(now),
        "entity": TIER_CHANGE_ENTITY,
        "customer_id": balance.customer_id,
        "from_tier": balance.tier,
        "to_tier": to_tier,
        "qualifying_points": points,
        "at": now.isoformat(),
    }
    balance.tier = to_tier
    balance.tier_since = now.isoformat()
    balance.downgrade_since = None
    balance.review_on = _next_month(now).isoformat() if to_tier != "bronze" else None
    return item


def prune(balance: Balance, now: datetime) -> None:
    """Forget purchase months that can no longer count (kept: the window plus a year of margin)."""
    current = now.year * 12 + now.month - 1
    balance.buckets = {
        m: v for m, v in balance.buckets.items() if current - _month_index(m) < 2 * WINDOW_MONTHS
    }


def upgrade(balance: Balance, now: datetime) -> Item | None:
    """Raise the tier at once when qualifying points reach a higher one; the tier_change item."""
    prune(balance, now)
    points = qualifying_points(balance.buckets, now)
    target = tier_for(points)
    if TIERS.index(target) > TIERS.index(balance.tier):
        return _change(balance, target, points, now)
    if balance.tier != "bronze" and balance.review_on is None:
        balance.review_on = _next_month(now).isoformat()
    return None


def review(balance: Balance, now: datetime, grace_days: int) -> Item | None:
    """Scheduled re-evaluation: upgrade, keep, start a grace period, or downgrade after it."""
    points = qualifying_points(balance.buckets, now)
    target = tier_for(points)
    if TIERS.index(target) > TIERS.index(balance.tier):
        return _change(balance, target, points, now)
    if target == balance.tier:
        balance.downgrade_since = None
        balance.review_on = _next_month(now).isoformat() if balance.tier != "bronze" else None
        return None
    if balance.downgrade_since is None:
        balance.downgrade_since = now.isoformat()
        balance.review_on = (now + timedelta(days=grace_days)).date().isoformat()
        return None
    ends = datetime.fromisoformat(balance.downgrade_since) + timedelta(days=grace_days)
    if now < ends:
        balance.review_on = ends.date().isoformat()
        return None
    return _change(balance, target, points, now)
