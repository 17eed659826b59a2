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
        "when": "Cuándo",
        "quiet": "Sin mensajes entre",
        "and": "y",
        "timezone": "Zona horaria",
        "frequency": "Ofertas y novedades",
        "frequencies": {
            "as_it_happens": "en el momento",
            "daily_digest": "un resumen al día",
            "weekly": "un resumen a la semana",
        },
        "max": "Como mucho, mensajes de marketing por semana",
        "critical": "Los avisos de reserva lista llegan siempre, también en esas horas.",
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
        "when": "When",
        "quiet": "No messages between",
        "and": "and",
        "timezone": "Time zone",
        "frequency": "Offers and news",
        "frequencies": {
            "as_it_happens": "as it happens",
            "daily_digest": "one digest a day",
            "weekly": "one digest a week",
        },
        "max": "At most, marketing messages a week",
        "critical": "Reservation-ready notices always arrive, also in those hours.",
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
    when = _when_fields(t, prefs)
    return _page(
        lang,
        f"<h1>{t['prefs']}</h1>{notice}"
        f'<form method="post" action="{html.escape(action)}"><input type="hidden" name="form" value="1">'
        f"<h2>{t['channels']}</h2>{''.join(rows)}"
        f"{when}"
        f'<label>{t["language"]} <select name="language">{options}</select></label> '
        f'<button type="submit">{t["save"]}</button></form>',
    )


def _when_fields(t: Mapping[str, Any], prefs: Mapping[str, Any]) -> str:
    """Quiet hours, time zone, frequency and the marketing cap (empty: the stage's own)."""
    quiet = prefs.get("quiet_hours") or {}
    cap = prefs.get("marketing_weekly_max")
    frequencies: Mapping[str, str] = t["frequencies"]
    choices = "".join(
        f'<option value="{code}"{" selected" if prefs.get("frequency") == code else ""}>{label}</option>'
        for code, label in frequencies.items()
    )
    zone = html.escape(str(prefs.get("timezone") or ""))
    start, end = (html.escape(str(quiet.get(k) or "")) for k in ("start", "end"))
    return (
        f"<fieldset><legend>{t['when']}</legend>"
        f'<label>{t["quiet"]} <input type="time" name="quiet_start" value="{start}"></label> '
        f'<label>{t["and"]} <input type="time" name="quiet_end" value="{end}"></label> '
        f'<label>{t["timezone"]} <input name="timezone" value="{zone}" placeholder="Europe/Madrid"></label>'
        f"<p>{t['critical']}</p>"
        f'<label>{t["frequency"]} <select name="frequency">{choices}</select></label> '
        f'<label>{t["max"]} <input type="number" min="0" max="50" name="marketing_weekly_max"'
        f' value="{"" if cap is None else int(cap)}"></label></fieldset>'
    )
