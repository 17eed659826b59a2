"""The email as it leaves: MIME with RFC 8058 one-click unsubscribe on every marketing message.

A marketing email carries ``List-Unsubscribe: <https://.../unsubscribe/{token}>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (what Gmail and Yahoo require of bulk
senders), plus the same link and the preference center's, visible at the end of the body. The
token names the customer, the channel and the message's topic: the one click leaves that topic
on email (or all email marketing for a message without a topic). Transactional email carries the
preference link only.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from loyalty.notify import links
from loyalty.notify.catalogue import TOPICS, topic_of
from loyalty.notify.templates import language_of
from loyalty.settings import get_settings
from loyalty.store.table import Item

ONE_CLICK = "List-Unsubscribe=One-Click"
_FOOTER = {
    "es": ("Darte de baja de estos mensajes", "Tus preferencias"),
    "en": ("Unsubscribe from these messages", "Your preferences"),
}


def _topics(message: Mapping[str, Any]) -> tuple[str, ...]:
    if message.get("intent") == "digest":
        found = {topic_of(str(m.get("intent"))) for m in (message.get("data") or {}).get("items") or []}
        return tuple(sorted(t for t in found if t)) or TOPICS
    topic = message.get("topic") or topic_of(str(message.get("intent", "")))
    return (str(topic),) if topic else TOPICS


def compose(content: Mapping[str, Any], message: Item, address: str) -> dict[str, Any]:
    """``content`` (subject, text, html) with the footer links, the headers and the raw MIME."""
    lang = language_of(message.get("locale"))
    customer_id = str(message["customer_id"])
    marketing = message.get("klass") == "marketing"
    prefs = links.preferences_url(customer_id)
    leave, manage = _FOOTER[lang]
    text, body = str(content["text"]), str(content["html"])
    footer_text = f"\n\n--\n{manage}: {prefs}"
    footer_html = f'<p><a href="{html.escape(prefs)}">{manage}</a></p>'
    headers: dict[str, str] = {}
    if marketing:
        unsubscribe = links.unsubscribe_url(customer_id, "email", _topics(message))
        footer_text = f"\n\n--\n{leave}: {unsubscribe}\n{manage}: {prefs}"
        footer_html = (
            f'<p><a href="{html.escape(unsubscribe)}">{leave}</a> · '
            f'<a href="{html.escape(prefs)}">{manage}</a></p>'
        )
        headers = {"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": ONE_CLICK}
    text += footer_text
    body = body.replace("</body>", f"{footer_html}</body>") if "</body>" in body else body + footer_html
    mime = EmailMessage()
    mime["Subject"] = str(content["subject"])
    mime["From"] = formataddr(("", get_settings().notify_email_from or "no-reply@example.com"))
    mime["To"] = address
    mime["Message-ID"] = make_msgid(idstring=str(message["message_id"]))
    for name, value in headers.items():
        mime[name] = value
    mime.set_content(text)
    mime.add_alternative(body, subtype="html")
    return {**content, "text": text, "html": body, "headers": headers, "raw": mime.as_string()}
