"""Accrual rules as data: what an order earns, per channel, campaign, currency, category and SKU.

Currency policy: points per currency unit are defined per currency (a ``base`` rule names its
currency). An order in a currency with no active base rule earns nothing: the event is recorded
as ignored (metric ``PointsUnsupportedCurrency``), never converted at a guessed rate.
Multipliers do not stack: the highest active one applies to every line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from loyalty.models.events import Channel, OrderLine, OrderPayload
from loyalty.points.model import RULE_ENTITY
from loyalty.store.table import Item

RULES_PK = "PTSRULE"
SALES_CHANNELS = (Channel.WEB, Channel.POS, Channel.APP, Channel.CHAT)


class RuleKind(StrEnum):
    BASE = "base"  # points per currency unit of every line
    MULTIPLIER = "multiplier"  # x the base points of every line, in a date window (campaigns)
    FIXED_BONUS = "fixed_bonus"  # bonus points per order (optionally above a minimum total)
    CATEGORY_BONUS = "category_bonus"  # bonus points per unit of lines in given categories
    SKU_BONUS = "sku_bonus"  # bonus points per unit of given SKUs
    FIRST_CHANNEL_PURCHASE = "first_channel_purchase"  # first order in a channel new to the customer
    OMNICHANNEL = "omnichannel"  # active in >= min_channels channels within period_days


ORDER_LEVEL = frozenset({RuleKind.FIXED_BONUS, RuleKind.FIRST_CHANNEL_PURCHASE, RuleKind.OMNICHANNEL})


class AccrualRule(BaseModel):
    """One accrual rule (validated per kind); stored as ``PTSRULE`` / ``RULE#<rule_id>``."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    rule_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    kind: RuleKind
    description: str = Field(default="", max_length=256)
    channels: list[Channel] = Field(default_factory=list, description="empty: every sales channel")
    campaign_id: str | None = Field(default=None, max_length=64)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    points_per_unit: Decimal | None = Field(default=None, gt=0, le=1000)
    multiplier: Decimal | None = Field(default=None, gt=1, le=20)
    bonus_points: int | None = Field(default=None, ge=1, le=1_000_000)
    categories: list[str] = Field(default_factory=list, max_length=100)
    skus: list[str] = Field(default_factory=list, max_length=500)
    min_order_total: Decimal | None = Field(default=None, ge=0)
    min_channels: int = Field(default=2, ge=2, le=6)
    period_days: int = Field(default=30, ge=1, le=366)
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    active: bool = True

    @model_validator(mode="after")
    def _fields_of_kind(self) -> AccrualRule:
        needs: dict[RuleKind, tuple[str, ...]] = {
            RuleKind.BASE: ("points_per_unit", "currency"),
            RuleKind.MULTIPLIER: ("multiplier",),
            RuleKind.FIXED_BONUS: ("bonus_points",),
            RuleKind.CATEGORY_BONUS: ("bonus_points", "categories"),
            RuleKind.SKU_BONUS: ("bonus_points", "skus"),
            RuleKind.FIRST_CHANNEL_PURCHASE: ("bonus_points",),
            RuleKind.OMNICHANNEL: ("bonus_points",),
        }
        missing = [name for name in needs[self.kind] if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.kind.value} rule needs {', '.join(missing)}")
        if self.min_order_total is not None and self.currency is None:
            raise ValueError("min_order_total needs a currency")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self

    def applies(self, channel: str, at: datetime) -> bool:
        """Active, for this channel, and ``at`` inside its date window."""
        if not self.active or (self.channels and channel not in self.channels):
            return False
        if self.valid_from and at < self.valid_from:
            return False
        return not (self.valid_to and at >= self.valid_to)

    def to_item(self) -> Item:
        data = self.model_dump(mode="json", exclude_none=True)
        return {"pk": RULES_PK, "sk": f"RULE#{self.rule_id}", "entity": RULE_ENTITY, **data}

    @classmethod
    def from_item(cls, item: Item) -> AccrualRule:
        data = {k: v for k, v in item.items() if k not in {"pk", "sk", "entity", "created_at", "updated_at"}}
        return cls.model_validate(data)


DEFAULT_RULES: tuple[AccrualRule, ...] = (
    *(
        AccrualRule(
            rule_id=f"base-{currency.lower()}",
            kind=RuleKind.BASE,
            description=f"1 point per {unit} in every sales channel",
            currency=currency,
            points_per_unit=Decimal(1),
        )
        for currency, unit in (("EUR", "euro"), ("USD", "US dollar"), ("GBP", "pound sterling"))
    ),
    AccrualRule(
        rule_id="first-purchase-new-channel",
        kind=RuleKind.FIRST_CHANNEL_PURCHASE,
        description="50 points for the first purchase in a channel new to the customer",
        bonus_points=50,
    ),
    AccrualRule(
        rule_id="omnichannel-monthly",
        kind=RuleKind.OMNICHANNEL,
        description="100 points once a month for buying in 2+ channels within 30 days",
        bonus_points=100,
        min_channels=2,
        period_days=30,
    ),
)


@dataclass
class PurchaseHistory:
    """What the rules need to know about the customer's past purchases (kept on the balance)."""

    channels: Mapping[str, str] = field(default_factory=dict)  # channel -> last purchase (iso)
    omni_periods: Iterable[str] = ()


@dataclass
class Part:
    rule_id: str
    points: int


@dataclass
class Earning:
    """What one order earns: points per line (with the rules behind them) and order-level bonuses."""

    supported: bool
    lines: dict[str, tuple[str, int, int, list[Part]]] = field(default_factory=dict)  # sku, qty, pts
    bonuses: list[tuple[RuleKind, Part]] = field(default_factory=list)

    @property
    def line_points(self) -> int:
        return sum(points for _, _, points, _ in self.lines.values())

    @property
    def bonus_points(self) -> int:
        return sum(part.points for _, part in self.bonuses)

    @property
    def omni_awarded(self) -> bool:
        return any(kind is RuleKind.OMNICHANNEL for kind, _ in self.bonuses)


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _pick_base(rules: list[AccrualRule], channel: str, currency: str) -> AccrualRule | None:
    """The most specific active base rule for (channel, currency): channel-specific wins."""
    candidates = [r for r in rules if r.kind is RuleKind.BASE and r.currency == currency]
    candidates.sort(key=lambda r: (not r.channels, r.campaign_id is None, r.rule_id))
    return candidates[0] if candidates else None


def omni_period(at: datetime) -> str:
    """The period an omnichannel bonus is awarded at most once in (a calendar month)."""
    return at.strftime("%Y-%m")


def compute_earning(
    order: OrderPayload,
    channel: str,
    occurred_at: datetime,
    rules: Iterable[AccrualRule],
    history: PurchaseHistory,
) -> Earning:
    """Apply the rules active at ``occurred_at`` in ``channel`` to ``order``."""
    active = [r for r in rules if r.applies(channel, occurred_at)]
    base = _pick_base(active, channel, order.currency)
    if base is None or base.points_per_unit is None:
        return Earning(supported=False)
    multipliers = [r for r in active if r.kind is RuleKind.MULTIPLIER and r.multiplier]
    best = max(multipliers, key=lambda r: (r.multiplier, r.rule_id), default=None)
    earning = Earning(supported=True)
    for line in order.lines:
        parts = _line_parts(line, base, best, active)
        earning.lines[line.line_id] = (line.sku, line.quantity, sum(p.points for p in parts), parts)
    seen = {c: datetime.fromisoformat(at) for c, at in history.channels.items()}
    omni_periods = set(history.omni_periods)
    for rule in sorted(active, key=lambda r: r.rule_id):
        if (
            rule.kind in ORDER_LEVEL
            and rule.bonus_points
            and _order_bonus_applies(rule, order, channel, occurred_at, seen, omni_periods, earning)
        ):
            earning.bonuses.append((rule.kind, Part(rule.rule_id, rule.bonus_points)))
    return earning


def _line_parts(
    line: OrderLine, base: AccrualRule, best: AccrualRule | None, active: list[AccrualRule]
) -> list[Part]:
    """The points one order line earns: base (split from the best multiplier's extra), SKU and
    category bonuses per unit."""
    assert base.points_per_unit is not None
    factor = base.points_per_unit * (best.multiplier if best and best.multiplier else Decimal(1))
    base_points = _floor(line.total * factor)
    parts = [Part(base.rule_id, base_points)]
    if best is not None:
        parts = [Part(base.rule_id, _floor(line.total * base.points_per_unit))]
        parts.append(Part(best.rule_id, base_points - parts[0].points))
    for rule in active:
        matches = (rule.kind is RuleKind.SKU_BONUS and line.sku in rule.skus) or (
            rule.kind is RuleKind.CATEGORY_BONUS and line.category in rule.categories
        )
        if matches and rule.bonus_points:
            parts.append(Part(rule.rule_id, rule.bonus_points * line.quantity))
    return parts


def _order_bonus_applies(
    rule: AccrualRule,
    order: OrderPayload,
    channel: str,
    occurred_at: datetime,
    seen: dict[str, datetime],
    omni_periods: set[str],
    earning: Earning,
) -> bool:
    """Whether an order-level bonus rule (fixed, first purchase in a channel, omnichannel) applies."""
    if rule.kind is RuleKind.FIXED_BONUS:
        return rule.min_order_total is None or (
            rule.currency == order.currency and order.total >= rule.min_order_total
        )
    if rule.kind is RuleKind.FIRST_CHANNEL_PURCHASE:
        return bool(seen) and channel not in seen
    since = occurred_at - timedelta(days=rule.period_days)
    recent = {c for c, at in seen.items() if since <= at <= occurred_at} | {channel}
    return (
        len(recent) >= rule.min_channels
        and omni_period(occurred_at) not in omni_periods
        and not earning.omni_awarded
    )
