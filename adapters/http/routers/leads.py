"""POST /api/leads: the Mini App's lead form. initData says who; the core's lead service does the rest."""

from __future__ import annotations

import logging
from typing import Annotated, Protocol

from fastapi import APIRouter, BackgroundTasks
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from adapters.http.dependencies import RuntimeDep
from adapters.http.miniapp_auth import TelegramUserDep
from adapters.wiring import Runtime
from agent.types import Channel

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


class LeadIntake(Protocol):
    """The core's lead service as this route uses it (normalise, consent, dedupe, store + outbox)."""

    async def create_lead(
        self,
        *,
        channel: Channel,
        user_id: str,
        first_name: str | None,
        username: str | None,
        brand: str,
        name: str,
        phone: str,
        consent_personal_data: bool,
        consent_marketing: bool,
        profile: dict[str, object],
        program_ids: list[str],
    ) -> int: ...


CONFIRMATION = (
    "Спасибо, {name}! Мы получили вашу заявку из мини-приложения. "
    "Менеджер свяжется с вами в рабочее время (ежедневно 10:00–18:00)."
)


async def _confirm_in_chat(runtime: Runtime, telegram_id: int, name: str) -> None:
    if runtime.notifier is None:
        return
    try:
        await runtime.notifier.notify_user(telegram_id, CONFIRMATION.format(name=name))
    except Exception:  # the lead is stored; a failed courtesy message must not turn it into an error
        log.warning("could not confirm the Mini App lead in chat", exc_info=True)


@router.post("/api/leads", status_code=201)
async def submit_lead(
    body: MiniAppLead, user: TelegramUserDep, runtime: RuntimeDep, tasks: BackgroundTasks
) -> JSONResponse:
    """201 {"ok": true, "lead_id"}; 422 consent_required / invalid phone; 401 without valid initData."""
    if runtime.lead_service is None:
        return JSONResponse({"ok": False, "reason": "leads_unavailable"}, 503)
    profile = {k: v for k, v in body.model_dump(include={"grade", "goal", "subject", "format"}).items() if v}
    lead_id = await runtime.lead_service.create_lead(
        channel=Channel.miniapp,
        user_id=str(user.id),
        first_name=user.first_name,
        username=user.username,
        brand=body.brand or runtime.settings.brand_default,
        name=body.name,
        phone=body.phone,
        consent_personal_data=body.consent_personal_data,
        consent_marketing=body.consent_marketing,
        profile=profile,
        program_ids=body.program_ids,
    )
    tasks.add_task(_confirm_in_chat, runtime, user.id, body.name)
    return JSONResponse({"ok": True, "lead_id": lead_id}, 201)
