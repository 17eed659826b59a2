"""Identity merges as seen by other capabilities (points, notifications, analytics).

Identity resolution writes one merge-log item per merge or unmerge (``entity = "merge"``); the
router turns its INSERT into a ``CustomerMerged`` message on the points queue, so the ledger of
an absorbed customer moves to the survivor (and back on unmerge) exactly once, asynchronously,
without identity ever touching points' items.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MERGE_ENTITY = "merge"


class CustomerMerged(BaseModel):
    """``absorbed_ids`` now resolve to ``survivor_id`` (kind=merge), or were split back out (unmerge)."""

    model_config = ConfigDict(defer_build=True)

    kind: Literal["merge", "unmerge"]
    merge_id: str = Field(min_length=1, description="id of the merge (an unmerge names the merge it undoes)")
    survivor_id: str
    absorbed_ids: list[str] = Field(min_length=1)
    at: AwareDatetime
