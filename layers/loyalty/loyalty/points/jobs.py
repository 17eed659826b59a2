"""The scheduled points jobs as their functions run them: a time budget, EMF counts, one log line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from loyalty.observability import logger, metrics
from loyalty.points.service import JobReport, PointsService

SAFETY_MARGIN_S = 15.0  # stop early enough to save the cursor before Lambda's timeout


@dataclass(frozen=True)
class Job:
    run: Callable[[PointsService, float], JobReport]
    done: str  # the log line
    counts: Callable[[JobReport], dict[str, int]]  # EMF metric -> value


RELEASE = Job(
    lambda svc, budget: svc.release_pending(budget_s=budget),
    "pending points released",
    lambda r: {"PointsReleased": r.points},
)
EXPIRE = Job(
    lambda svc, budget: svc.expire_points(budget_s=budget),
    "points expired",
    lambda r: {"PointsExpired": r.points, "PointsExpiringFlagged": r.flagged},
)
REVIEW_TIERS = Job(
    lambda svc, budget: svc.review_tiers(budget_s=budget),
    "tiers reviewed",
    lambda r: {"TiersReviewed": r.customers},
)


def run(job: Job, remaining_ms: int) -> dict[str, Any]:
    """Run ``job`` within the invocation's remaining time; it resumes where it stopped next time."""
    report = job.run(PointsService(), max(1.0, remaining_ms / 1000 - SAFETY_MARGIN_S))
    for name, value in job.counts(report).items():
        metrics.add_metric(name, MetricUnit.Count, value)
    logger.info(job.done, extra=report.to_dict())
    return report.to_dict()
