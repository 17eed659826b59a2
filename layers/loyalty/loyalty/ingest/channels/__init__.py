"""One module per channel: its native payload (pydantic) and ``normalise(document) -> events``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from loyalty.models.events import ChannelEvent

Normaliser = Callable[[Any, datetime], list[ChannelEvent]]


def normaliser(channel: str) -> Normaliser | None:
    """The normaliser of ``channel``, imported on first use (a function loads only what it needs)."""
    if channel not in CHANNELS:
        return None
    module = importlib.import_module(f"loyalty.ingest.channels.{channel}")
    normalise: Normaliser = module.normalise
    return normalise


CHANNELS = ("web", "pos", "app", "chat", "email", "stock")
