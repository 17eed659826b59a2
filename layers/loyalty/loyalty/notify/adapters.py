"""Provider adapters behind one interface: ``send(channel, address, content, message) -> Delivery``.

- ``OutboxProvider`` (DeliveryMode=outbox, locally and in tests): the message becomes an outbox
  item written in the same transaction that marks it sent, so it appears exactly once.
- ``SesProvider`` (email, SES v2), ``SmsProvider`` (End User Messaging SMS), ``SnsPushProvider``
  (SNS mobile push to the endpoint of the device token) and ``WhatsAppProvider`` (WhatsApp
  Business Cloud API over HTTPS with a token from Secrets Manager).

A ``ProviderError`` is ``permanent`` when retrying the same address cannot help (rejected
address, disabled endpoint, a 4xx from the API): the sender then falls back to the next channel
at once; otherwise it is retried with backoff first.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from loyalty import aws
from loyalty.notify.secrets import json_secret
from loyalty.notify.store import OUTBOX_ENTITY, outbox_sk, ttl
from loyalty.settings import get_settings
from loyalty.store.table import Item

_RETRYABLE = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "LimitExceededException",
        "KMSThrottlingException",
    }
)


class ProviderError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Delivery:
    provider_id: str
    outbox: Item | None = None


class Provider(Protocol):
    def send(self, channel: str, address: str, content: Mapping[str, Any], message: Item) -> Delivery: ...


def _aws_error(err: ClientError | BotoCoreError) -> ProviderError:
    if isinstance(err, BotoCoreError):
        return ProviderError(str(err))
    code = err.response.get("Error", {}).get("Code", "")
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500) or 500)
    return ProviderError(f"{code}: {err}", permanent=code not in _RETRYABLE and status < 500)


class OutboxProvider:
    """Writes the rendered message to the customer's outbox collection (no external call)."""

    def send(self, channel: str, address: str, content: Mapping[str, Any], message: Item) -> Delivery:
        now = datetime.now(UTC)
        return Delivery(
            provider_id=f"outbox:{message['message_id']}",
            outbox={
                "pk": message["pk"],
                "sk": outbox_sk(now, str(message["message_id"])),
                "entity": OUTBOX_ENTITY,
                "customer_id": message["customer_id"],
                "message_id": message["message_id"],
                "intent": message["intent"],
                "channel": channel,
                "address": address,
                "content": dict(content),
                "sent_at": now.isoformat(),
                "expires_at": ttl(now),
            },
        )


class SesProvider:
    def send(self, channel: str, address: str, content: Mapping[str, Any], message: Item) -> Delivery:
        settings = get_settings()
        kwargs: dict[str, Any] = {}
        if settings.notify_ses_configuration_set:  # bounces and complaints come back through it
            kwargs["ConfigurationSetName"] = settings.notify_ses_configuration_set
        if content.get("raw"):  # composed with the List-Unsubscribe headers (loyalty.notify.mail)
            body: dict[str, Any] = {"Raw": {"Data": str(content["raw"]).encode()}}
        else:
            body = {
                "Simple": {
                    "Subject": {"Data": content["subject"], "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": content["text"], "Charset": "UTF-8"},
                        "Html": {"Data": content["html"], "Charset": "UTF-8"},
                    },
                }
            }
        try:
            resp = aws.client("sesv2").send_email(
                FromEmailAddress=settings.notify_email_from,
                Destination={"ToAddresses": [address]},
                Content=body,
                EmailTags=[{"Name": "intent", "Value": str(message["intent"])}],
                **kwargs,
            )
        except (ClientError, BotoCoreError) as err:
            raise _aws_error(err) from err
        return Delivery(provider_id=str(resp.get("MessageId", "")))


class SmsProvider:
    """AWS End User Messaging SMS (pinpoint-sms-voice-v2) from the configured pool or number."""

    def send(self, channel: str, address: str, content: Mapping[str, Any], message: Item) -> Delivery:
        kind = "PROMOTIONAL" if message.get("klass") == "marketing" else "TRANSACTIONAL"
        kwargs: dict[str, Any] = {
            "DestinationPhoneNumber": address,
            "MessageBody": content["text"],
            "MessageType": kind,
        }
        origin = get_settings().sms_origination_identity
        if origin:
            kwargs["OriginationIdentity"] = origin
        try:
            resp = aws.client("pinpoint-sms-voice-v2").send_text_message(**kwargs)
        except (ClientError, BotoCoreError) as err:
            raise _aws_error(err) from err
        return Delivery(provider_id=str(resp.get("MessageId", "")))


class SnsPushProvider:
    def send(self, channel: str, address: str, content: Mapping[str, Any], message: Item) -> Delivery:
        settings = get_settings()
        if not settings.push_platform_arn:
            raise ProviderError("no push platform application configured", permanent=True)
        sns = aws.client("sns")
        note = {"title": content["title"], "body": content["body"]}
        payload = {
            "default": content["body"],
            "GCM": json.dumps({"notification": note, "data": {"intent": message["intent"]}}),
            "APNS": json.dumps({"aps": {"alert": note}, "intent": message["intent"]}),
        }
        try:
            endpoint = sns.create_platform_endpoint(
                PlatformApplicationArn=settings.push_platform_arn, Token=address
            )["EndpointArn"]
            resp = sns.publish(TargetArn=endpoint, Message=json.dumps(payload), MessageStructure="json")
        except (ClientError, BotoCoreError) as err:
            raise _aws_error(err) from err
        return Delivery(provider_id=str(resp.get("MessageId", "")))


def whatsapp_credentials() -> tuple[str, str]:
    """(access token, phone number id) from the WhatsApp secret (JSON)."""
    document = json_secret(get_settings().whatsapp_secret_id, ProviderError, "the WhatsApp secret")
    token, number = document.get("token"), document.get("phone_number_id")
    if not token or not number:
        raise ProviderError("the WhatsApp secret has no token / phone_number_id", permanent=True)
    return str(token), str(number)


class WhatsAppProvider:
    """WhatsApp Business Cloud API: a pre-approved template message with body parameters."""

    timeout_s = 5.0

    def send(self, channel: str, address: str, content: Mapping[str, Any], message: Item) -> Delivery:
        token, number = whatsapp_credentials()
        to = address.lstrip("+")
        if "text" in content:  # a reply inside the customer service window: free-form text
            body: dict[str, Any] = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"preview_url": False, "body": content["text"]},
            }
        else:
            body = self.template_body(to, content)
        base = get_settings().whatsapp_api_base.rstrip("/")
        if not base.startswith("https://"):
            raise ProviderError("WHATSAPP_API_BASE must be https", permanent=True)
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            f"{base}/{number}/messages",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:  # noqa: S310
                answer = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            permanent = 400 <= err.code < 500 and err.code != 429
            raise ProviderError(f"WhatsApp API {err.code}", permanent=permanent) from err
        except (urllib.error.URLError, TimeoutError, ValueError) as err:
            raise ProviderError(f"WhatsApp API unreachable: {err}") from err
        ids = answer.get("messages") or [{}]
        return Delivery(provider_id=str(ids[0].get("id", "")))

    @staticmethod
    def template_body(to: str, content: Mapping[str, Any]) -> dict[str, Any]:
        """A pre-approved template message with body parameters (outside the service window)."""
        return {
            "messaging_product": "whatsapp",
            "to": to,
            "type": "template",
            "template": {
                "name": content["template"],
                "language": {"code": content["language"]},
                "components": [
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": p} for p in content["parameters"]],
                    }
                ],
            },
        }


LIVE: dict[str, type[Provider]] = {
    "email": SesProvider,
    "sms": SmsProvider,
    "push": SnsPushProvider,
    "whatsapp": WhatsAppProvider,
}


def provider_for(channel: str) -> Provider:
    """The adapter for ``channel`` in this deployment's delivery mode."""
    if get_settings().delivery_mode == "outbox":
        return OutboxProvider()
    return LIVE[channel]()
