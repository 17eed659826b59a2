"""Message templates for marketing: list, preview with sample data, publish a new version.

GET /templates; POST /templates/preview; PUT /templates/{intent}/{channel}/{lang} (422 for an
unknown placeholder or an SMS over 160 characters). The next message of that intent uses it.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from loyalty.http import api, principal
from loyalty.notify.template_store import TemplateStore, preview
from loyalty.observability import logger, metrics
from loyalty.settings import requires

app = api("Loyalty message templates API", "/openapi/templates.json")

Name = Annotated[str, Path(pattern=r"^[a-z_]{2,40}$")]


class PreviewRequest(BaseModel):
    model_config = ConfigDict(defer_build=True)
    intent: str = Field(pattern=r"^[a-z_]{2,40}$")
    channel: str = Field(pattern=r"^[a-z]{2,10}$")
    language: str = Field(pattern=r"^[a-z]{2}$")
    content: dict[str, Any] | None = Field(default=None, description="a draft; none: what is published")


class PublishRequest(BaseModel):
    model_config = ConfigDict(defer_build=True)
    content: dict[str, Any]


def _caller() -> str:
    who = principal(app)
    return who.email or who.subject if who else "unknown"


@app.get("/templates", summary="Every template's current version (version 0: the built-in text)")
def list_templates() -> dict[str, Any]:
    return {"templates": TemplateStore().list()}


@app.post("/templates/preview", summary="Render a template (published or draft) with sample data")
def preview_template(request: Annotated[PreviewRequest, Body()]) -> dict[str, Any]:
    rendered = preview(request.intent, request.channel, request.language, request.content)
    return {
        "intent": request.intent,
        "channel": request.channel,
        "language": request.language,
        "rendered": rendered,
    }


@app.put("/templates/<intent>/<channel>/<lang>", summary="Publish a new version of a template")
def publish(
    intent: Name, channel: Name, lang: Name, request: Annotated[PublishRequest, Body()]
) -> Response[Any]:
    published = TemplateStore().publish(intent, channel, lang, request.content, by=_caller())
    metrics.add_metric("TemplatesPublished", MetricUnit.Count, 1)
    logger.info(
        "template published",
        extra={"intent": intent, "channel": channel, "language": lang, "version": published["version"]},
    )
    return Response(status_code=201, content_type="application/json", body=published)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@requires("table_name", "staff_issuer")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
