"""The one Mini App authentication dependency: initData from `Authorization: tma …` or `X-Tg-Init-Data`.

Every route that trusts a Telegram user goes through ``authenticate_init_data``; the admin API adds
"HTTP Basic OR initData of an allowed admin" on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBasicCredentials

from adapters.http.auth import UNAUTHORIZED_HEADERS, basic_scheme, verify_admin
from adapters.http.dependencies import NowDep, SettingsDep
from adapters.http.initdata import (
    InitData,
    InitDataError,
    WebAppUser,
    verify_with_bot_token,
    verify_with_signature,
)
from agent.settings import Settings

TMA_SCHEME = "tma"


def raw_init_data(request: Request) -> str | None:
    """The raw initData string the client sent, or None when it sent none (a plain browser)."""
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == TMA_SCHEME and value.strip():
        return value.strip()
    header = request.headers.get("x-tg-init-data", "").strip()
    return header or None


def verify_init_data(raw: str, settings: Settings, now: datetime) -> InitData:
    """Raises InitDataError (reason invalid_init_data or expired)."""
    max_age = settings.webapp_initdata_max_age_seconds
    if settings.telegram_bot_token is not None and settings.telegram_bot_token.get_secret_value():
        token = settings.telegram_bot_token.get_secret_value()
        return verify_with_bot_token(raw, token, max_age_seconds=max_age, now=now)
    if settings.webapp_bot_id is not None:
        return verify_with_signature(raw, settings.webapp_bot_id, max_age_seconds=max_age, now=now)
    raise HTTPException(503, {"reason": "telegram_not_configured"})


def _rejected(error: InitDataError) -> HTTPException:
    return HTTPException(401, {"reason": error.reason})


async def optional_init_data(request: Request, settings: SettingsDep, now: NowDep) -> InitData | None:
    """None for a plain browser; 401 for initData that is forged, malformed or expired."""
    raw = raw_init_data(request)
    if raw is None:
        return None
    try:
        data = verify_init_data(raw, settings, now)
    except InitDataError as error:
        raise _rejected(error) from None
    if data.user is None:  # e.g. initData of an inline-mode chat: no one to attribute a lead to
        raise HTTPException(401, {"reason": "invalid_init_data"})
    return data


async def required_user(data: Annotated[InitData | None, Depends(optional_init_data)]) -> WebAppUser:
    """The Telegram user behind a request that must come from inside Telegram."""
    if data is None or data.user is None:
        raise HTTPException(401, {"reason": "not_in_telegram"})
    return data.user


OptionalInitDataDep = Annotated[InitData | None, Depends(optional_init_data)]
TelegramUserDep = Annotated[WebAppUser, Depends(required_user)]


def is_miniapp_admin(data: InitData, settings: Settings) -> bool:
    return settings.admin_miniapp_enabled and data.user is not None and data.user.id in settings.admin_telegram_ids


@dataclass(frozen=True)
class AdminIdentity:
    """The admin a request authenticated as: who acted (the audit line) and the name an answer to a
    client carries. Both come from the credentials, never from the request body."""

    who: str  # basic:<user> | telegram:<id>
    name: str  # the browser login's account name, or the Telegram user's name from the signed initData
    telegram_id: int | None = None


def _telegram_name(user: WebAppUser) -> str:
    return " ".join(part for part in (user.first_name, user.last_name) if part).strip()[:128] or "Менеджер"


async def admin_identity(
    request: Request,
    settings: SettingsDep,
    now: NowDep,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic_scheme)],
) -> AdminIdentity:
    """Basic auth (a browser) or initData of a user in ADMIN_TELEGRAM_IDS (the admin Mini App)."""
    if await verify_admin(request, credentials, settings):
        return AdminIdentity(who=f"basic:{settings.admin_user}", name=settings.admin_user.strip()[:128] or "Менеджер")
    raw = raw_init_data(request)
    if raw is None:
        raise HTTPException(401, {"reason": "admin_auth_required"}, headers=UNAUTHORIZED_HEADERS)
    try:
        data = verify_init_data(raw, settings, now)
    except InitDataError as error:
        raise _rejected(error) from None
    if not settings.admin_miniapp_enabled:
        raise HTTPException(403, {"reason": "admin_miniapp_disabled"})
    if data.user is None or not is_miniapp_admin(data, settings):
        raise HTTPException(403, {"reason": "not_an_admin"})
    return AdminIdentity(who=f"telegram:{data.user.id}", name=_telegram_name(data.user), telegram_id=data.user.id)


async def require_admin_or_miniapp_admin(identity: Annotated[AdminIdentity, Depends(admin_identity)]) -> str:
    """Who acted, for the audit line: ``basic:<user>`` or ``telegram:<id>``."""
    return identity.who


AdminAccessDep = Annotated[str, Depends(require_admin_or_miniapp_admin)]
AdminIdentityDep = Annotated[AdminIdentity, Depends(admin_identity)]
