"""POST /api/leads: the Mini App's lead form. initData says who; the core's LeadService does the rest
(phone normalisation, consent proof with the consent text version, 24 h dedupe, lead + CRM outbox)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from adapters.http.auth import client_ip
from adapters.http.dependencies import AssistantDep, CatalogDep, LeadServiceDep, NotifierDep, NowDep, SettingsDep
from adapters.http.initdata import WebAppUser
from adapters.http.miniapp_auth import TelegramUserDep
from adapters.http.ratelimit import RateLimiter, storage_for
from agent.leads import LeadForm
from agent.ports import Notifier
from agent.settings import Settings
from agent.types import Identity

log = logging.getLogger(__name__)
router = APIRouter(tags=["mini app"])

Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]


class MiniAppLead(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    phone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    consent_personal_data: bool = False
    consent_marketing: bool = False
    brand: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")] | None = None
    grade: int | None = Field(default=None, ge=1, le=11)
    goal: Short | None = None
    subject: Short | None = None
    format: Short | None = None
    program_ids: list[Annotated[str, StringConstraints(max_length=64)]] = Field(default_factory=list, max_length=10)


CONFIRMATION = (
    "Спасибо, {name}! Мы получили вашу заявку из мини-приложения. "
    "Менеджер свяжется с вами в рабочее время ({hours})."
)


CONFIRMATION_TIMEOUT_SECONDS = 5.0


async def _confirm_in_chat(notifier: Notifier, telegram_id: int, text: str) -> bool:
    """True when the bot delivered the confirmation; the app tells the parent only what really happened."""
    try:
        await asyncio.wait_for(
            notifier.notify_user(telegram_id, text), CONFIRMATION_TIMEOUT_SECONDS
        )
    except Exception:  # the lead is stored; a failed courtesy message must not turn it into an error
        log.warning("could not confirm the Mini App lead in chat", exc_info=True)
        return False
    return True


@dataclass(frozen=True)
class LeadLimits:
    """LEADS_RATE_LIMIT_USER_REQUESTS per Telegram user and LEADS_RATE_LIMIT_IP_REQUESTS per client IP
    within LEADS_RATE_LIMIT_WINDOW_SECONDS: one initData must not queue hundreds of CRM requests."""

    per_user: RateLimiter
    per_ip: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> LeadLimits:
        storage = storage_for(settings)
        window = settings.leads_rate_limit_window_seconds
        return cls(
            per_user=RateLimiter(storage, "leads_user", settings.leads_rate_limit_user_requests, window),
            per_ip=RateLimiter(storage, "leads_ip", settings.leads_rate_limit_ip_requests, window),
        )


async def _within_limits(request: Request, user: WebAppUser, settings: Settings) -> None:
    limits: LeadLimits | None = getattr(request.app.state, "lead_limits", None)
    if limits is None:
        limits = request.app.state.lead_limits = LeadLimits.from_settings(settings)
    for limiter, key in ((limits.per_user, str(user.id)), (limits.per_ip, client_ip(request, settings.trusted_proxy_ips))):
        decision = await limiter.hit(key)
        if not decision.allowed:
            raise HTTPException(
                429, {"reason": "rate_limited", "retry_after": decision.retry_after},
                headers={"Retry-After": str(decision.retry_after)},
            )


@router.post("/api/leads", status_code=201)
async def submit_lead(
    body: MiniAppLead,
    user: TelegramUserDep,
    leads: LeadServiceDep,
    assistant: AssistantDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    notifier: NotifierDep,
    now: NowDep,
    request: Request,
) -> JSONResponse:
    """201 {"ok", "lead_id", "duplicate", "programs", "profile", "confirmation_sent"}: what is stored (the
    earlier lead when ``duplicate``); 422 consent_required / a bad phone / an unknown brand or program;
    429 over the limits (LEADS_RATE_LIMIT_*); 401 without valid initData."""
    await _within_limits(request, user, settings)
    brand = body.brand or settings.brand_default
    form = LeadForm(
        telegram_id=user.id,
        first_name=user.first_name,
        username=user.username,
        brand=brand,
        name=body.name,
        phone=body.phone,
        consent_personal_data=body.consent_personal_data,
        consent_marketing=body.consent_marketing,
        profile=body.model_dump(include={"grade", "goal", "subject", "format"}, exclude_none=True),
        program_ids=body.program_ids,
    )
    outcome = await leads.submit_form(form, now=now)
    # The chat (bot or Mini App) must not ask for this phone again.
    await assistant.remember_lead(
        identity=Identity.telegram.value, external_id=str(user.id), brand=brand, lead_id=outcome.lead_id,
        phone=outcome.phone, name=body.name, profile=outcome.profile, program_ids=outcome.program_ids,
    )
    hours = catalog.brand(brand).brand.working_hours
    confirmation = CONFIRMATION.format(name=body.name, hours=hours)
    confirmed = await _confirm_in_chat(notifier, user.id, confirmation) if outcome.created else False
    programs = [
        {"id": pid, "title": program.title if (program := catalog.program(brand, pid)) else pid}
        for pid in outcome.program_ids
    ]
    return JSONResponse(
        {"ok": True, "lead_id": outcome.lead_id, "duplicate": not outcome.created, "programs": programs,
         "profile": outcome.profile, "confirmation_sent": confirmed},
        201,
    )
