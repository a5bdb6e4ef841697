"""Telegram Mini App initData validation: the bot-token HMAC check and the third-party Ed25519 check.

Pure functions with an explicit ``now`` so tests can replay public vectors signed years ago.
The algorithm follows core.telegram.org/bots/webapps (see shared/reference/telegram.md):
every field but ``hash`` sorted by key, values URL-decoded exactly as received (JSON is never
re-encoded), compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# Telegram's production public key for third-party validation (the test environment has its own,
# 40055058…72ec; this service only accepts production Mini Apps).
PRODUCTION_PUBLIC_KEY = bytes.fromhex("e7bf03a2fa4602af4580703d88dda5bb59f32ed8b02a56c187fe7d34caed242d")

MAX_RAW_LENGTH = 8192  # real initData is ~1 KB; anything far larger is not from Telegram


class InitDataError(Exception):
    """The initData is malformed or its signature does not match."""

    reason = "invalid_init_data"


class InitDataExpired(InitDataError):
    """Authentic, but older than the allowed age."""

    reason = "expired"


@dataclass(frozen=True)
class WebAppUser:
    id: int
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_premium: bool = False
    photo_url: str | None = None

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "language_code": self.language_code,
        }


@dataclass(frozen=True)
class InitData:
    auth_date: datetime
    user: WebAppUser | None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def start_param(self) -> str | None:
        return self.fields.get("start_param")


def parse_fields(raw: str) -> dict[str, str]:
    """Split the query string; a malformed or repeated field makes the whole thing invalid."""
    if not raw or len(raw) > MAX_RAW_LENGTH:
        raise InitDataError("empty or oversized initData")
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError) as error:
        raise InitDataError("initData is not a query string") from error
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InitDataError("a field is repeated")
    return fields


def _check_lines(fields: dict[str, str], skip: set[str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key not in skip)


def verify_with_bot_token(raw: str, bot_token: str, *, max_age_seconds: int, now: datetime) -> InitData:
    """The check a bot owner does: HMAC-SHA256 keyed by HMAC("WebAppData", bot_token)."""
    fields = parse_fields(raw)
    given = fields.get("hash")
    if not given:
        raise InitDataError("hash is missing")
    secret = hmac.new(b"WebAppData", bot_token.encode("utf-8"), hashlib.sha256).digest()
    data_check_string = _check_lines(fields, {"hash"})
    expected = hmac.new(secret, data_check_string.encode("utf-8"), hashlib.sha256).hexdigest()
    # Bytes on both sides: compare_digest raises on non-ASCII str, and a bad hash must just be invalid.
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8")):
        raise InitDataError("hash does not match")
    return _accept(fields, max_age_seconds, now)


def verify_with_signature(
    raw: str,
    bot_id: int,
    *,
    max_age_seconds: int,
    now: datetime,
    public_key: bytes = PRODUCTION_PUBLIC_KEY,
) -> InitData:
    """The third-party check: Telegram's Ed25519 signature over "<bot_id>:WebAppData\\n<fields>"."""
    fields = parse_fields(raw)
    encoded = fields.get("signature")
    if not encoded:
        raise InitDataError("signature is missing")
    try:
        # Telegram sends unpadded base64url; restore the padding the decoder needs.
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as error:
        raise InitDataError("signature is not base64url") from error
    message = f"{bot_id}:WebAppData\n" + _check_lines(fields, {"hash", "signature"})
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message.encode("utf-8"))
    except InvalidSignature as error:
        raise InitDataError("signature does not match") from error
    return _accept(fields, max_age_seconds, now)


# Telegram's clock and ours may differ a little; more than this is a forged or replayed date.
CLOCK_SKEW_SECONDS = 300


def _accept(fields: dict[str, str], max_age_seconds: int, now: datetime) -> InitData:
    try:
        auth_date = datetime.fromtimestamp(int(fields["auth_date"]), UTC)
    except (KeyError, ValueError, OverflowError, OSError) as error:
        raise InitDataError("auth_date is missing or not a number") from error
    # A date ahead of our clock by more than the skew would never expire by the age check below.
    if auth_date - now > timedelta(seconds=CLOCK_SKEW_SECONDS):
        raise InitDataError("auth_date is in the future")
    if max_age_seconds > 0 and now - auth_date > timedelta(seconds=max_age_seconds):
        raise InitDataExpired(f"auth_date is older than {max_age_seconds} s")
    return InitData(auth_date=auth_date, user=_parse_user(fields.get("user")), fields=fields)


def _parse_user(value: str | None) -> WebAppUser | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
        user_id = int(data["id"])
    except (ValueError, TypeError, KeyError) as error:
        raise InitDataError("user is not a JSON object with an id") from error

    def text(name: str) -> str | None:
        item = data.get(name)
        return str(item) if item is not None else None

    return WebAppUser(
        id=user_id,
        first_name=text("first_name") or "",
        last_name=text("last_name"),
        username=text("username"),
        language_code=text("language_code"),
        is_premium=data.get("is_premium") in (True, "true"),
        photo_url=text("photo_url"),
    )
