"""Customer identifiers and their normalisation (one person, typed differently, is one value).

Rules (documented in docs/data-model.md):
- email: trimmed, ``mailto:`` / angle brackets / a trailing dot of the domain dropped, lowercased
  (Unicode NFKC first). For gmail.com / googlemail.com the local part drops dots and any ``+tag``
  and the domain becomes gmail.com (Google ignores both); for other providers only the ``+tag``
  is dropped, for a known set that documents sub-addressing (outlook, hotmail, icloud...).
- phone: E.164 (``+`` and digits). ``tel:`` and extensions (``ext``, ``x``, ``#``) dropped, an
  international trunk ``(0)`` dropped; ``00`` becomes ``+``. National numbers without a prefix get
  the default country code (``DEFAULT_PHONE_COUNTRY_CODE``, Spain's 34 by default) after their
  trunk zeros; a number that already starts with that country code and has the country's
  national length after it (``34612345678``) is taken as international.
- loyalty_card, pos_customer: digits and letters only, uppercased (spaces, dashes, dots dropped).
- device_id: trimmed, braces dropped, lowercased (UUID-like vendor ids).
- social_handle: ``network:handle``, lowercased, ``@`` dropped (``instagram:@Ana`` -> ``instagram:ana``);
  profile URLs of known networks (``https://instagram.com/Ana``) become the same form.
"""

from __future__ import annotations

import os
import re
import unicodedata
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator


class IdentifierType(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    LOYALTY_CARD = "loyalty_card"
    DEVICE_ID = "device_id"
    SOCIAL_HANDLE = "social_handle"
    POS_CUSTOMER = "pos_customer"


_GMAIL = {"gmail.com", "googlemail.com"}
_PLUS_ADDRESSING = {
    "outlook.com",
    "hotmail.com",
    "live.com",
    "icloud.com",
    "me.com",
    "protonmail.com",
    "yahoo.com",
}
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SOCIAL_RE = re.compile(r"^[a-z0-9_.-]+:[a-z0-9_.]+$")


class InvalidIdentifier(ValueError):
    """A value that cannot be a valid identifier of its type."""


def normalize_email(value: str) -> str:
    email = unicodedata.normalize("NFKC", value).strip().strip("<>\"'").strip().lower()
    email = email.removeprefix("mailto:").rstrip(".")
    if not _EMAIL_RE.match(email):
        raise InvalidIdentifier(f"not an email address: {value!r}")
    local, domain = email.rsplit("@", 1)
    if domain in _GMAIL:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
    elif domain in _PLUS_ADDRESSING:
        local = local.split("+", 1)[0]
    if not local:
        raise InvalidIdentifier(f"not an email address: {value!r}")
    return f"{local}@{domain}"


#: digits of a national number (after the trunk zero) for countries whose length is fixed
NATIONAL_LENGTHS = {"34": 9, "351": 9, "33": 9, "32": 9, "41": 9, "31": 9}
_EXTENSION = re.compile(r"(ext\.?|extension|x|#|;).*$", re.IGNORECASE)


def normalize_phone(value: str, default_country_code: str | None = None) -> str:
    raw = unicodedata.normalize("NFKC", value).strip().lower().removeprefix("tel:")
    raw = _EXTENSION.sub("", raw).replace("(0)", "")
    if re.search(r"[a-z]", raw):
        raise InvalidIdentifier(f"not a phone number: {value!r}")
    digits = re.sub(r"[^\d+]", "", raw)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if "+" in digits[1:]:
        raise InvalidIdentifier(f"not a phone number: {value!r}")
    if not digits.startswith("+"):
        cc = default_country_code or os.environ.get("DEFAULT_PHONE_COUNTRY_CODE", "34")
        national = digits.lstrip("0")
        if national.startswith(cc) and len(national) - len(cc) == NATIONAL_LENGTHS.get(cc, -1):
            national = national[len(cc) :]
        digits = f"+{cc}{national}"
    if not 8 <= len(digits) - 1 <= 15:
        raise InvalidIdentifier(f"not a phone number: {value!r}")
    return digits


def normalize_code(value: str) -> str:
    code = re.sub(r"[\s\-_.]", "", value.strip()).upper()
    if not code.isalnum():
        raise InvalidIdentifier(f"not a card / customer number: {value!r}")
    return code


_SOCIAL_URL = re.compile(
    r"^(?:https?://)?(?:www\.|m\.)?(instagram|facebook|tiktok|twitter|x)\.com/@?([a-z0-9_.]+)/?(?:\?.*)?$"
)


def normalize_social(value: str) -> str:
    handle = unicodedata.normalize("NFKC", value).strip().lower()
    url = _SOCIAL_URL.match(handle)
    if url:
        network = "twitter" if url.group(1) == "x" else url.group(1)
        handle = f"{network}:{url.group(2)}"
    handle = handle.replace("@", "").replace(" ", "")
    if not _SOCIAL_RE.match(handle):
        raise InvalidIdentifier(f"social handle must be 'network:handle': {value!r}")
    return handle


def normalize(kind: IdentifierType, value: str) -> str:
    """The canonical form of ``value`` as an identifier of type ``kind``."""
    match kind:
        case IdentifierType.EMAIL:
            return normalize_email(value)
        case IdentifierType.PHONE:
            return normalize_phone(value)
        case IdentifierType.LOYALTY_CARD | IdentifierType.POS_CUSTOMER:
            return normalize_code(value)
        case IdentifierType.DEVICE_ID:
            device = value.strip().strip("{}").strip().lower()
            if not device:
                raise InvalidIdentifier("empty device id")
            return device
        case IdentifierType.SOCIAL_HANDLE:
            return normalize_social(value)


class Identifier(BaseModel):
    """A typed identifier; the value is normalised on construction."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    type: IdentifierType
    value: str

    @model_validator(mode="after")
    def _normalise(self) -> Identifier:
        object.__setattr__(self, "value", normalize(self.type, self.value))
        return self

    @property
    def key(self) -> str:
        """``type#value``: the identifier's key in the table."""
        return f"{self.type.value}#{self.value}"
