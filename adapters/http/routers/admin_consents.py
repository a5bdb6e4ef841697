"""Admin API over consent (152-ФЗ): the grants, refusals and withdrawals on record, and a withdrawal on
a user's behalf (e.g. they wrote to the school's e-mail) through the same method the chats use."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query
from sqlmodel import col, select

from adapters.http.dependencies import AssistantDep, DatabaseDep
from adapters.http.miniapp_auth import AdminAccessDep
from adapters.http.routers.admin_leads import RowId
from adapters.storage.models import ConsentRecord, Lead, User
from agent.withdrawal import UserRef

log = logging.getLogger(__name__)
router = APIRouter(tags=["admin"])

ConsentEvent = Literal["granted", "refused", "withdrawn"]
ConsentKind = Literal["personal_data", "marketing"]


@router.get("/admin/consents")
async def list_consents(
    _: AdminAccessDep,
    db: DatabaseDep,
    event: Annotated[ConsentEvent | None, Query(description="granted, refused or withdrawn")] = None,
    kind: Annotated[ConsentKind | None, Query()] = None,
    channel: Annotated[str | None, Query(max_length=16, pattern=r"^[a-z]+$")] = None,
    user_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, object]:
    """Consent records, newest first. A withdrawal lists the requests the CRM already held
    (``crm_leads``): the school removes those CRM records by hand (README, «Personal data»)."""
    where = []
    if event is not None:
        where.append(ConsentRecord.event == event)
    if kind is not None:
        where.append(ConsentRecord.kind == kind)
    if channel:
        where.append(ConsentRecord.channel == channel)
    if user_id is not None:
        where.append(ConsentRecord.user_id == user_id)
    async with db.session() as session:
        total = (await session.exec(select(sa.func.count()).select_from(ConsentRecord).where(*where))).one()
        rows = (
            await session.exec(
                select(ConsentRecord, User)
                .join(User, col(User.id) == col(ConsentRecord.user_id))
                .where(*where)
                .order_by(col(ConsentRecord.id).desc())
                .offset((page - 1) * per_page)
                .limit(per_page)
            )
        ).all()
        withdrawn_users = {record.user_id for record, _ in rows if record.event == "withdrawn"}
        # Only a withdrawal leaves a lead without a phone: these are the ones the CRM still holds.
        kept = (
            await session.exec(
                select(Lead.user_id, Lead.id, Lead.crm_id).where(col(Lead.user_id).in_(withdrawn_users), Lead.phone == "")
            )
        ).all() if withdrawn_users else []
    crm_leads: dict[int, list[dict[str, object]]] = {}
    for owner, lead_id, crm_id in kept:
        crm_leads.setdefault(owner or 0, []).append({"lead_id": lead_id, "crm_id": crm_id})
    items = []
    for record, user in rows:
        item: dict[str, object] = {
            "id": record.id,
            "user_id": record.user_id,
            "identity": user.identity,
            "external_id": user.external_id,
            "kind": record.kind,
            "event": record.event,
            "granted": record.granted,
            "channel": record.channel,
            "text_version": record.text_version,
            "created_at": record.created_at.isoformat(),
        }
        if record.event == "withdrawn":
            item["crm_leads"] = crm_leads.get(record.user_id, [])
        items.append(item)
    return {"ok": True, "items": items, "total": total, "page": page, "per_page": per_page}


@router.post("/admin/users/{user_id}/forget")
async def forget_user(user_id: RowId, who: AdminAccessDep, assistant: AssistantDep) -> dict[str, object]:
    """Withdraw the user's consent and delete their personal data, exactly as /forget does."""
    withdrawn = await assistant.withdraw_consent(UserRef(user_id=user_id), "admin")
    if withdrawn.erasure is None:
        raise HTTPException(404, {"reason": "not_found", "detail": f"user {user_id}"})
    log.info("consent of user %s withdrawn by %s", user_id, who)
    return {"ok": True, "erasure": withdrawn.erasure.model_dump(mode="json")}
