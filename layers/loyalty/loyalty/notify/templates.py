"""One message per intent, rendered for every channel from the same data, in es and en.

Templates are data: per intent and language a subject, a short text (SMS and push body), a
longer text (email), a push title and the WhatsApp Business template name. Values are
substituted with ``str.format_map``; HTML renderings escape every value.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LANGUAGES = ("es", "en")
DEFAULT_LANGUAGE = "es"
SMS_MAX_CHARS = 160


@dataclass(frozen=True)
class Template:
    subject: str
    title: str
    short: str  # SMS text and push body
    text: str  # email body (plain text; the HTML rendering wraps it)
    whatsapp: str  # approved WhatsApp template name
    params: tuple[str, ...]  # data keys passed, in order, as the WhatsApp template's body parameters


TEMPLATES: dict[str, dict[str, Template]] = {
    "welcome": {
        "es": Template(
            "Bienvenido/a, {first_name}",
            "Bienvenido/a",
            "Hola {first_name}, ya eres parte del club. Suma puntos en tienda, web y app.",
            "Hola {first_name}:\n\nYa eres parte del club. Sumas puntos con cada compra en tienda, web,"
            " app y chat, y los ves todos en un solo saldo.",
            "welcome_v1",
            ("first_name",),
        ),
        "en": Template(
            "Welcome, {first_name}",
            "Welcome",
            "Hi {first_name}, you are in. Earn points in store, online and in the app.",
            "Hi {first_name},\n\nWelcome to the club. Every purchase in store, online, in the app and"
            " in chat earns points, all in one balance.",
            "welcome_v1",
            ("first_name",),
        ),
    },
    "points_earned": {
        "es": Template(
            "Has ganado {points} puntos",
            "+{points} puntos",
            "{first_name}, ya tienes disponibles {points} puntos de tu compra {order_id}.",
            "Hola {first_name}:\n\nLos {points} puntos de tu compra {order_id} ya están disponibles.",
            "points_earned_v1",
            ("first_name", "points", "order_id"),
        ),
        "en": Template(
            "You earned {points} points",
            "+{points} points",
            "{first_name}, {points} points from order {order_id} are now available.",
            "Hi {first_name},\n\nThe {points} points from your order {order_id} are now available.",
            "points_earned_v1",
            ("first_name", "points", "order_id"),
        ),
    },
    "tier_reached": {
        "es": Template(
            "Ya eres nivel {to_tier}",
            "Nivel {to_tier}",
            "Enhorabuena {first_name}, has subido al nivel {to_tier}.",
            "Hola {first_name}:\n\nHas pasado del nivel {from_tier} al nivel {to_tier}. Disfruta de"
            " tus nuevas ventajas.",
            "tier_reached_v1",
            ("first_name", "to_tier"),
        ),
        "en": Template(
            "You reached {to_tier}",
            "{to_tier} tier",
            "Congratulations {first_name}, you reached the {to_tier} tier.",
            "Hi {first_name},\n\nYou moved up from {from_tier} to {to_tier}. Enjoy your new benefits.",
            "tier_reached_v1",
            ("first_name", "to_tier"),
        ),
    },
    "points_expiring": {
        "es": Template(
            "{points} puntos caducan el {expires_on}",
            "Tus puntos caducan",
            "{first_name}, {points} puntos caducan el {expires_on}. Úsalos antes.",
            "Hola {first_name}:\n\n{points} de tus puntos caducan el {expires_on}. Canjéalos en"
            " cualquier tienda, en la web o en la app.",
            "points_expiring_v1",
            ("first_name", "points", "expires_on"),
        ),
        "en": Template(
            "{points} points expire on {expires_on}",
            "Your points expire",
            "{first_name}, {points} points expire on {expires_on}. Use them before then.",
            "Hi {first_name},\n\n{points} of your points expire on {expires_on}. Redeem them in any"
            " store, online or in the app.",
            "points_expiring_v1",
            ("first_name", "points", "expires_on"),
        ),
    },
    "reservation_ready": {
        "es": Template(
            "Tu reserva está lista en {location_id}",
            "Reserva lista",
            "{first_name}, tu reserva de {quantity} x {sku} está lista en {location_id}.",
            "Hola {first_name}:\n\nTu reserva de {quantity} x {sku} te espera en {location_id}.",
            "reservation_ready_v1",
            ("first_name", "quantity", "sku", "location_id"),
        ),
        "en": Template(
            "Your reservation is ready at {location_id}",
            "Reservation ready",
            "{first_name}, your reservation of {quantity} x {sku} is ready at {location_id}.",
            "Hi {first_name},\n\nYour reservation of {quantity} x {sku} is waiting for you at {location_id}.",
            "reservation_ready_v1",
            ("first_name", "quantity", "sku", "location_id"),
        ),
    },
    "reservation_expiring": {
        "es": Template(
            "Tu reserva en {location_id} caduca pronto",
            "Reserva a punto de caducar",
            "{first_name}, recoge {quantity} x {sku} en {location_id} antes de que caduque.",
            "Hola {first_name}:\n\nTu reserva de {quantity} x {sku} en {location_id} caduca pronto.",
            "reservation_expiring_v1",
            ("first_name", "quantity", "sku", "location_id"),
        ),
        "en": Template(
            "Your reservation at {location_id} expires soon",
            "Reservation expiring",
            "{first_name}, collect {quantity} x {sku} at {location_id} before it expires.",
            "Hi {first_name},\n\nYour reservation of {quantity} x {sku} at {location_id} expires soon.",
            "reservation_expiring_v1",
            ("first_name", "quantity", "sku", "location_id"),
        ),
    },
    "back_in_stock": {
        "es": Template(
            "{sku} vuelve a estar disponible",
            "De nuevo disponible",
            "{first_name}, {sku} vuelve a estar disponible en {location_id}.",
            "Hola {first_name}:\n\nEl producto {sku} que esperabas ya está disponible en {location_id}.",
            "back_in_stock_v1",
            ("first_name", "sku", "location_id"),
        ),
        "en": Template(
            "{sku} is back in stock",
            "Back in stock",
            "{first_name}, {sku} is back in stock at {location_id}.",
            "Hi {first_name},\n\nThe product {sku} you were waiting for is available at {location_id}.",
            "back_in_stock_v1",
            ("first_name", "sku", "location_id"),
        ),
    },
    "order_status": {
        "es": Template(
            "Tu pedido {order_id}: {status_text}",
            "Pedido {order_id}",
            "{first_name}, tu pedido {order_id} ({total} {currency}): {status_text}.",
            "Hola {first_name}:\n\nTu pedido {order_id} por {total} {currency}: {status_text}.",
            "order_status_v1",
            ("first_name", "order_id", "status_text"),
        ),
        "en": Template(
            "Your order {order_id}: {status_text}",
            "Order {order_id}",
            "{first_name}, your order {order_id} ({total} {currency}): {status_text}.",
            "Hi {first_name},\n\nYour order {order_id} for {total} {currency}: {status_text}.",
            "order_status_v1",
            ("first_name", "order_id", "status_text"),
        ),
    },
}

#: Several marketing intents of one customer within the digest window, as one message.
DIGEST: dict[str, Template] = {
    "es": Template(
        "{first_name}, tienes {count} novedades",
        "{count} novedades",
        "{first_name}: {lines}",
        "Hola {first_name}:\n\n{lines}",
        "digest_v1",
        ("first_name", "count", "lines"),
    ),
    "en": Template(
        "{first_name}, {count} updates for you",
        "{count} updates",
        "{first_name}: {lines}",
        "Hi {first_name},\n\n{lines}",
        "digest_v1",
        ("first_name", "count", "lines"),
    ),
}
WHATSAPP_PARAM_MAX = 1000

#: Free-form replies to a customer's own message (sent inside the provider's reply window, so no
#: pre-approved template is needed); not editable as templates: they confirm what the customer did.
REPLIES: dict[str, dict[str, str]] = {
    "whatsapp_stop_confirmed": {
        "es": "Hecho, {first_name}: ya no te enviaremos mensajes por WhatsApp. Si cambias de idea,"
        " actívalo de nuevo en tu centro de preferencias.",
        "en": "Done, {first_name}: we will not message you on WhatsApp any more. If you change your"
        " mind, turn it back on in your preference center.",
    },
}

#: Words substituted for an order status, per language.
ORDER_STATUS_TEXT: dict[str, dict[str, str]] = {
    "es": {
        "placed": "recibido",
        "completed": "pagado",
        "cancelled": "cancelado",
        "refunded": "reembolsado",
    },
    "en": {"placed": "received", "completed": "paid", "cancelled": "cancelled", "refunded": "refunded"},
}

_FALLBACK_NAME = {"es": "cliente", "en": "friend"}


def language_of(locale: str | None) -> str:
    """The template language for a profile locale ("es-ES" -> "es"); unknown -> the default."""
    lang = (locale or "").split("-", 1)[0].split("_", 1)[0].lower()
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


class _Values(dict[str, str]):
    """format_map source that renders a missing key as empty text instead of failing."""

    def __missing__(self, key: str) -> str:
        return ""


def _values(intent: str, lang: str, data: Mapping[str, Any], escape: bool) -> _Values:
    out = _Values()
    for key, value in data.items():
        text = "" if value is None else str(value)
        out[key] = html.escape(text) if escape else text
    if not out.get("first_name"):
        out["first_name"] = _FALLBACK_NAME[lang]
    if intent == "order_status":
        out["status_text"] = ORDER_STATUS_TEXT[lang].get(str(data.get("status", "")), str(data.get("status")))
    return out


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _digest_values(lang: str, data: Mapping[str, Any], channel: str) -> dict[str, Any]:
    """The digest's data with ``lines``: each member's subject line, listed as the channel shows lists."""
    first_name = data.get("first_name")
    lines = []
    for member in data.get("items") or []:
        member_data = {**(member.get("data") or {}), "first_name": first_name}
        template = TEMPLATES[str(member["intent"])][lang]
        lines.append(
            template.subject.format_map(_values(str(member["intent"]), lang, member_data, escape=False))
        )
    joined = "\n\n".join(f"- {line}" for line in lines) if channel == "email" else " / ".join(lines)
    return {"first_name": first_name, "count": len(lines), "lines": joined}


def builtin(intent: str, lang: str) -> Template:
    """The texts shipped with the code (the seeded defaults; KeyError: unknown intent)."""
    return DIGEST[lang] if intent == "digest" else TEMPLATES[intent][lang]


def render(
    intent: str,
    channel: str,
    locale: str | None,
    data: Mapping[str, Any],
    template: Template | None = None,
) -> dict[str, Any]:
    """The content of ``intent`` for ``channel`` in the customer's language (KeyError: unknown).

    ``template``: a published version (``loyalty.notify.template_store``) instead of the built-in.
    """
    lang = language_of(locale)
    if intent == "digest":
        data = _digest_values(lang, data, channel)
    plain = _values(intent, lang, data, escape=False)
    if intent in REPLIES:
        if channel != "whatsapp":
            raise KeyError(f"{intent} is a WhatsApp reply, not for {channel!r}")
        return {"text": REPLIES[intent][lang].format_map(plain), "language": lang}
    template = template or builtin(intent, lang)
    match channel:
        case "email":
            safe = _values(intent, lang, data, escape=True)
            paragraphs = "".join(f"<p>{p}</p>" for p in template.text.format_map(safe).split("\n\n"))
            return {
                "subject": template.subject.format_map(plain),
                "text": template.text.format_map(plain),
                "html": f'<!doctype html><html lang="{lang}"><body>{paragraphs}</body></html>',
            }
        case "sms":
            return {"text": _clip(template.short.format_map(plain), SMS_MAX_CHARS)}
        case "push":
            return {
                "title": _clip(template.title.format_map(plain), 64),
                "body": template.short.format_map(plain),
            }
        case "whatsapp":
            return {
                "template": template.whatsapp,
                "language": lang,
                "parameters": [_clip(plain[k], WHATSAPP_PARAM_MAX) for k in template.params],
            }
    raise KeyError(f"unknown channel {channel!r}")
