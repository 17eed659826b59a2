"""Server-rendered pages of the signed links (es / en): no script, no external resource.

GET never changes anything (link scanners and previews follow GETs): the unsubscribe page only
shows a button that POSTs, the same POST a mail client sends for RFC 8058 one-click.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from loyalty.notify.catalogue import TOPICS

TEXT = {
    "es": {
        "title": "Tus mensajes",
        "ask": "¿Dejar de recibir estos mensajes por {channel}?",
        "button": "Darme de baja",
        "done": "Listo: no recibirás más estos mensajes por {channel}.",
        "prefs": "Elige qué quieres recibir",
        "save": "Guardar",
        "saved": "Preferencias guardadas.",
        "language": "Idioma",
        "channels": "Canales",
        "topics": {"points": "Puntos", "offers": "Ofertas", "stock_alerts": "Avisos de stock"},
    },
    "en": {
        "title": "Your messages",
        "ask": "Stop receiving these messages by {channel}?",
        "button": "Unsubscribe",
        "done": "Done: you will not receive these messages by {channel} any more.",
        "prefs": "Choose what you receive",
        "save": "Save",
        "saved": "Preferences saved.",
        "language": "Language",
        "channels": "Channels",
        "topics": {"points": "Points", "offers": "Offers", "stock_alerts": "Stock alerts"},
    },
}


def _lang(lang: str | None) -> str:
    return lang if lang in TEXT else "es"


def _page(lang: str, body: str) -> str:
    title = TEXT[lang]["title"]
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head><body><main>{body}</main></body></html>"
    )


def unsubscribe_form(lang: str | None, channel: str, action: str) -> str:
    lang = _lang(lang)
    t = TEXT[lang]
    return _page(
        lang,
        f"<p>{html.escape(str(t['ask']).format(channel=channel))}</p>"
        f'<form method="post" action="{html.escape(action)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">{t["button"]}</button></form>',
    )


def unsubscribed(lang: str | None, channel: str) -> str:
    lang = _lang(lang)
    return _page(lang, f"<p>{html.escape(str(TEXT[lang]['done']).format(channel=channel))}</p>")


def preference_form(lang: str | None, prefs: Mapping[str, Any], action: str, saved: bool = False) -> str:
    lang = _lang(lang)
    t = TEXT[lang]
    names: Mapping[str, str] = t["topics"]  # type: ignore[assignment]
    rows = []
    for channel, on in prefs["channels"].items():
        topics = "".join(
            f'<label><input type="checkbox" name="topic.{channel}.{topic}"'
            f"{' checked' if prefs['topics'][channel][topic] else ''}> {names[topic]}</label> "
            for topic in TOPICS
        )
        rows.append(
            f'<fieldset><legend><label><input type="checkbox" name="channel.{channel}"'
            f"{' checked' if on else ''}> {channel}</label></legend>{topics}</fieldset>"
        )
    options = "".join(
        f'<option value="{code}"{" selected" if prefs["language"] == code else ""}>{code}</option>'
        for code in TEXT
    )
    notice = f"<p role=status>{t['saved']}</p>" if saved else ""
    return _page(
        lang,
        f"<h1>{t['prefs']}</h1>{notice}"
        f'<form method="post" action="{html.escape(action)}"><input type="hidden" name="form" value="1">'
        f"<h2>{t['channels']}</h2>{''.join(rows)}"
        f'<label>{t["language"]} <select name="language">{options}</select></label> '
        f'<button type="submit">{t["save"]}</button></form>',
    )
