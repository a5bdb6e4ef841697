"""Short-lived signed links: a download an admin starts inside Telegram opens in the phone's browser,
which has neither the initData nor the Basic password, so the link itself carries the permission.

The signature is HMAC-SHA256 over the path, the query (without ``sig``) and the expiry, keyed by a key
derived from ADMIN_PASS (a server secret the browser never sees); changing ADMIN_PASS voids every link."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from urllib.parse import urlencode

from agent.settings import Settings

LINK_TTL = timedelta(minutes=5)


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"signed-link:" + settings.admin_pass.get_secret_value().encode()).digest()


def _signature(settings: Settings, path: str, params: list[tuple[str, str]]) -> str:
    message = path + "?" + urlencode(sorted(params))
    return hmac.new(_key(settings), message.encode(), hashlib.sha256).hexdigest()


def sign_link(settings: Settings, path: str, params: list[tuple[str, str]], *, now: datetime) -> str:
    """``path?params&exp=…&sig=…``, valid for LINK_TTL from ``now``."""
    signed = [*params, ("exp", str(int((now + LINK_TTL).timestamp())))]
    return f"{path}?{urlencode([*signed, ('sig', _signature(settings, path, signed))])}"


def link_is_valid(settings: Settings, path: str, params: list[tuple[str, str]], *, now: datetime) -> bool:
    """True for an unexpired link signed by ``sign_link`` with exactly these params."""
    given = [value for key, value in params if key == "sig"]
    rest = [(key, value) for key, value in params if key != "sig"]
    expires = [value for key, value in rest if key == "exp"]
    if len(given) != 1 or len(expires) != 1 or not expires[0].isdigit():
        return False
    if int(expires[0]) < now.timestamp():
        return False
    return hmac.compare_digest(given[0].encode(), _signature(settings, path, rest).encode())
