"""Powertools logger / metrics / tracer, one set per process, named after the function's service."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

NAMESPACE = "OmnichannelLoyalty"

logger = Logger()
metrics = Metrics(namespace=NAMESPACE)
