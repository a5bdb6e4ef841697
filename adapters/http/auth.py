"""Admin authentication (HTTP Basic, constant-time) and the client address behind trusted proxies."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from adapters.http.admin_guard import admin_login_guard
from adapters.http.dependencies import SettingsDep
from agent.settings import Settings

basic_scheme = HTTPBasic(auto_error=False)
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Basic realm="admin", charset="UTF-8"'}


def _equal(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def check_admin_credentials(credentials: HTTPBasicCredentials | None, settings: SettingsDep) -> bool:
    if credentials is None or settings.admin_pass_is_known:
        return False  # a published password opens nothing (preflight says so in the log)
    # Both compared every time, so the timing says nothing about which one was wrong.
    user_ok = _equal(credentials.username, settings.admin_user)
    pass_ok = _equal(credentials.password, settings.admin_pass.get_secret_value())
    return user_ok and pass_ok


async def verify_admin(request: Request, credentials: HTTPBasicCredentials | None, settings: Settings) -> bool:
    """Check Basic credentials under the failed-login limits (adapters/http/admin_guard.py): 429 while
    the caller's address or the username is locked out, a failure counted otherwise."""
    if credentials is None:
        return False
    guard = admin_login_guard(request, settings)
    ip = client_ip(request, settings.trusted_proxy_ips)
    await guard.refuse_if_locked(ip, credentials.username)
    if check_admin_credentials(credentials, settings):
        return True
    await guard.failed(ip, credentials.username)
    return False


async def require_admin(
    request: Request, settings: SettingsDep, credentials: Annotated[HTTPBasicCredentials | None, Depends(basic_scheme)]
) -> str:
    if not await verify_admin(request, credentials, settings):
        raise HTTPException(401, {"reason": "admin_auth_required"}, headers=UNAUTHORIZED_HEADERS)
    return settings.admin_user


AdminDep = Annotated[str, Depends(require_admin)]


def client_ip(request: Request, trusted_proxies: list[str]) -> str:
    """The caller's address; X-Forwarded-For counts only when the direct peer is a trusted proxy,
    so a client can't dodge a per-IP limit by forging the header."""
    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    # Every X-Forwarded-For line, in order (a client's own line must not hide the one our proxy added).
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    # Walk from the right: the last hop not added by one of our proxies is the client.
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _is_trusted(hop, trusted_proxies):
            return hop
    return peer


def _is_trusted(address: str, trusted: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in trusted)
