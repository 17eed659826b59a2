"""Linking policy as data: junk identifiers that never link anyone, and per-type limits.

- Blocklist: exact values and ``fnmatch`` patterns per identifier type (``noemail@*``, a till's
  default card ``000000000``, the store's own phone). Defaults below, plus deployment entries from
  ``IDENTITY_BLOCKLIST`` (``type=pattern`` separated by commas; ``*=pattern`` matches every type).
- Limits: how many identifiers of a type one customer may hold (``loyalty_card=1`` is "one per
  customer"); overridden by ``IDENTIFIER_LIMITS`` (``type=n`` separated by commas).
- A merge joining more than ``MERGE_MAX_CUSTOMERS`` customers at once is never applied
  automatically (a shared tablet, a default till email): it is quarantined for staff review.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from loyalty.models.identifiers import Identifier, IdentifierType

DEFAULT_BLOCKLIST: tuple[tuple[str, str], ...] = (
    ("email", "noemail@*"),
    ("email", "no-email@*"),
    ("email", "no.email@*"),
    ("email", "sinemail@*"),
    ("email", "noreply@*"),
    ("email", "no-reply@*"),
    ("email", "none@*"),
    ("email", "test@test.*"),
    ("email", "*@example.com"),
    ("email", "*@example.org"),
    ("phone", "+*000000000"),
    ("phone", "+*111111111"),
    ("phone", "+*123456789"),
    ("phone", "+*999999999"),
    ("loyalty_card", "000000000*"),
    ("loyalty_card", "0"),
    ("pos_customer", "0"),
    ("pos_customer", "000000*"),
    ("pos_customer", "GUEST*"),
    ("pos_customer", "ANON*"),
    ("pos_customer", "CASH*"),
    ("device_id", "00000000-0000-0000-0000-000000000000"),
    ("device_id", "unknown"),
)

DEFAULT_LIMITS: dict[IdentifierType, int] = {
    IdentifierType.LOYALTY_CARD: 1,
    IdentifierType.POS_CUSTOMER: 1,
    IdentifierType.EMAIL: 5,
    IdentifierType.PHONE: 5,
    IdentifierType.DEVICE_ID: 20,
    IdentifierType.SOCIAL_HANDLE: 10,
}


def _pairs(spec: str) -> list[tuple[str, str]]:
    out = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        kind, sep, pattern = entry.partition("=")
        if not sep or not pattern.strip():
            raise ValueError(f"policy entry must be 'type=value': {entry!r}")
        out.append((kind.strip(), pattern.strip()))
    return out


@dataclass(frozen=True)
class LinkPolicy:
    """Which identifiers may link customers, and how many of a type a customer may hold."""

    blocklist: tuple[tuple[str, str], ...] = DEFAULT_BLOCKLIST
    limits: dict[IdentifierType, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    max_merge_customers: int = 3

    @classmethod
    def from_settings(cls, blocklist: str = "", limits: str = "", max_merge_customers: int = 3) -> LinkPolicy:
        """Defaults extended / overridden by the deployment's configuration strings."""
        merged_limits = dict(DEFAULT_LIMITS)
        for kind, count in _pairs(limits):
            merged_limits[IdentifierType(kind)] = int(count)
        extra = tuple((kind, pattern.lower()) for kind, pattern in _pairs(blocklist))
        return cls(DEFAULT_BLOCKLIST + extra, merged_limits, max_merge_customers)

    def blocked(self, ident: Identifier) -> bool:
        """True for junk values that must never link anyone."""
        value = ident.value.lower()
        return any(
            kind in {"*", ident.type.value} and fnmatch.fnmatchcase(value, pattern.lower())
            for kind, pattern in self.blocklist
        )

    def usable(self, identifiers: Iterable[Identifier]) -> list[Identifier]:
        """The identifiers of an event that may link (blocklisted ones dropped, duplicates merged)."""
        return [i for i in dict.fromkeys(identifiers) if not self.blocked(i)]

    def violations(self, identifiers: Iterable[Identifier]) -> list[str]:
        """Identifier types whose count exceeds its limit in this set (empty: within limits)."""
        counts = Counter(i.type for i in set(identifiers))
        return sorted(t.value for t, n in counts.items() if n > self.limits.get(t, 1_000))

    def room_for(self, held: Iterable[Identifier], new: Identifier) -> bool:
        """Whether a customer holding ``held`` may also hold ``new``."""
        return not self.violations([*held, new])


def get_policy() -> LinkPolicy:
    """The policy of this deployment (settings read at call time)."""
    from loyalty.settings import get_settings

    s = get_settings()
    return LinkPolicy.from_settings(s.identity_blocklist, s.identifier_limits, s.merge_max_customers)
