"""The demo's journey: Ana's email unsubscribe is an event built now, the sample left as it is."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from devstack.demo import JOURNEY, WEBHOOKS, _times, fresh_journey


def test_the_unsubscribe_is_built_now_and_is_the_latest_moment_of_ana_s_journey() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    journey = fresh_journey(JOURNEY)
    (unsubscribe,) = [d for s, d in journey if s.sample == "email_unsubscribe"]
    sample = json.loads((WEBHOOKS / "email_unsubscribe.json").read_text())
    # the sample's fields, only the time is now
    assert [{k: v for k, v in e.items() if k != "timestamp"} for e in unsubscribe] == [
        {k: v for k, v in e.items() if k != "timestamp"} for e in sample
    ]
    (moment,) = _times(unsubscribe)
    assert moment >= before
    # later than every other moment of Ana's own journey (her consents included), in order
    others = [t for s, d in journey if not s.provider and s.sample != "email_unsubscribe" for t in _times(d)]
    assert max(others) < moment
    assert [s.sample for s, _ in journey if s.provider is None] == [s.sample for s in JOURNEY]
