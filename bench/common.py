"""What every benchmark needs: fake credentials, moto in process with the template's resources."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from typing import Any

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "LOG_LEVEL": "WARNING",
}


def fake_aws_env() -> None:
    """Fake credentials and quiet Powertools, before anything creates a client."""
    os.environ.update(FAKE_AWS)
    os.environ.pop("AWS_ENDPOINT_URL", None)


@contextlib.contextmanager
def emulated(*functions: str, quiet: bool = True) -> Iterator[Any]:
    """moto in process, provisioned from template.yaml, with the env of ``functions`` applied.

    Yields the devstack resolver (``resolver.refs["IngestQueue"]`` ...). EMF metrics and logs
    that functions print go nowhere when ``quiet``.
    """
    fake_aws_env()
    from moto import mock_aws

    from devstack import moto_patches
    from devstack.provision import function_env, provision
    from loyalty import aws
    from loyalty.settings import get_settings

    moto_patches.install()
    sink = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
    with mock_aws(), sink:
        aws.reset()
        resolver = provision()
        for name in functions:
            os.environ.update(
                {k: v for k, v in function_env(resolver, name).items() if k != "POWERTOOLS_SERVICE_NAME"}
            )
        get_settings.cache_clear()
        try:
            yield resolver
        finally:
            get_settings.cache_clear()
            aws.reset()
