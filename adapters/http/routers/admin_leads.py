"""Admin API over leads: list with filters, status and note changes, CSV export for spreadsheets."""

from __future__ import annotations

import csv
import io
import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from adapters.http.dependencies import AdminQueriesDep, CatalogDep, NowDep, SettingsDep
from adapters.http.miniapp_auth import AdminAccessDep
from adapters.http.signed_links import LINK_TTL, link_is_valid, sign_link
from adapters.storage.admin_queries import AdminQueries, LeadFilter
from adapters.storage.models import Lead
from agent.catalog import Catalog

log = logging.getLogger(__name__)
router = APIRouter(tags=["admin"])

LeadStatus = Literal["new", "contacted", "trial", "enrolled", "lost"]
# Row ids are 32-bit integers in PostgreSQL: anything larger is a 422, not a database error.
RowId = Annotated[int, Path(ge=1, le=2_147_483_647)]
# Report days: a day outside these is a 422, not an overflow when the day after (or a month before) is taken.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date.max - timedelta(days=1)
CSV_ROW_LIMIT = 50_000
# A spreadsheet runs a cell starting with these as a formula (CSV injection); a leading ' defuses it.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def lead_filter(
    status: Annotated[LeadStatus | None, Query()] = None,
    source: Annotated[str | None, Query(max_length=64)] = None,
    brand: Annotated[str | None, Query(max_length=32)] = None,
    date_from: Annotated[date | None, Query(ge=FIRST_DAY, le=LAST_DAY, description="first day, inclusive (UTC)")] = None,
    date_to: Annotated[date | None, Query(ge=FIRST_DAY, le=LAST_DAY, description="last day, inclusive (UTC)")] = None,
    q: Annotated[str | None, Query(max_length=100, description="name, phone digits or note")] = None,
) -> LeadFilter:
    if date_from and date_to and date_from > date_to:
        raise HTTPException(422, {"reason": "invalid_request", "field": "date_from", "detail": "after date_to"})
    return LeadFilter(
        status=status,
        source=source or None,
        brand=brand or None,
        created_from=datetime.combine(date_from, time(), UTC) if date_from else None,
        created_to=datetime.combine(date_to + timedelta(days=1), time(), UTC) if date_to else None,
        text=q.strip() if q and q.strip() else None,
    )


LeadFilterDep = Annotated[LeadFilter, Depends(lead_filter)]


def lead_json(lead: Lead) -> dict[str, object]:
    return {
        "id": lead.id,
        "created_at": lead.created_at.isoformat(),
        "updated_at": lead.updated_at.isoformat(),
        "brand": lead.brand,
        "channel": lead.channel,
        "source": lead.source,
        "name": lead.name,
        "phone": lead.phone,
        "profile": lead.profile,
        "program_ids": lead.program_ids,
        "status": lead.status,
        "manager_note": lead.manager_note,
        "crm_status": lead.crm_status,
        "crm_id": lead.crm_id,
        "crm_error": lead.crm_error,
        "is_test": lead.is_test,
        "user_id": lead.user_id,
        "conversation_id": lead.conversation_id,
    }


@router.get("/admin/leads")
async def list_leads(
    _: AdminAccessDep,
    queries: AdminQueriesDep,
    catalog: CatalogDep,
    where: LeadFilterDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, object]:
    rows, total = await queries.leads(where, offset=(page - 1) * per_page, limit=per_page)
    items = [{**lead_json(r), "programs": _program_titles(catalog, r)} for r in rows]
    return {"ok": True, "items": items, "total": total, "page": page, "per_page": per_page}


def _program_titles(catalog: Catalog, lead: Lead) -> list[dict[str, str]]:
    """The catalog's titles of a lead's programs, for managers (an id the catalog dropped stays an id)."""
    titles = []
    for program_id in lead.program_ids or []:
        known = lead.brand in catalog.brand_ids()  # a lead of a brand no longer in the catalog
        program = catalog.program(lead.brand, program_id) if known else None
        titles.append({"id": program_id, "title": program.title if program else program_id})
    return titles


class LeadChange(BaseModel):
    status: LeadStatus | None = None
    manager_note: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _something_changes(self) -> LeadChange:
        if self.status is None and self.manager_note is None:
            raise ValueError("give status or manager_note")
        return self


@router.patch("/admin/leads/{lead_id}")
async def change_lead(
    lead_id: RowId, change: LeadChange, who: AdminAccessDep, queries: AdminQueriesDep
) -> dict[str, object]:
    lead = await queries.update_lead(lead_id, status=change.status, manager_note=change.manager_note)
    if lead is None:
        raise HTTPException(404, {"reason": "not_found", "detail": f"lead {lead_id}"})
    noted = change.manager_note is not None
    log.info("lead %s changed by %s: status=%s note_changed=%s", lead_id, who, change.status, noted)
    return {"ok": True, "lead": lead_json(lead)}


CSV_COLUMNS = (
    "id", "created_at", "brand", "channel", "source", "name", "phone", "grade", "goal", "subject", "format",
    "program_ids", "status", "crm_status", "manager_note",
)


def neutralise(value: object) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets skip leading spaces, NBSP and line breaks before reading a formula.
    formula = text.startswith(FORMULA_PREFIXES) or text.lstrip(" \u00a0\n\r\t\v\f").startswith(FORMULA_PREFIXES)
    return "'" + text if formula else text


def leads_csv(leads: list[Lead]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for lead in leads:
        profile = lead.profile or {}
        values = {
            **lead_json(lead),
            **{k: profile.get(k) for k in ("grade", "goal", "subject", "format")},
            "program_ids": ",".join(lead.program_ids or []),
        }
        writer.writerow([neutralise(values[c]) for c in CSV_COLUMNS])
    # The BOM makes Excel read the file as UTF-8 (Cyrillic names); `;` is its separator in ru locales.
    return "\ufeff" + buffer.getvalue()


@router.get("/admin/leads.csv")
async def export_leads(_: AdminAccessDep, queries: AdminQueriesDep, where: LeadFilterDep) -> Response:
    return await _csv_response(queries, where)


SIGNED_CSV_PATH = "/admin/leads.csv/signed"


@router.post("/admin/leads.csv/link")
async def csv_link(
    request: Request, who: AdminAccessDep, settings: SettingsDep, now: NowDep, _: LeadFilterDep
) -> dict[str, object]:
    """A download link for the admin Mini App (the filters of this request), valid for a few minutes."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k in LEAD_FILTER_PARAMS and v]
    log.info("signed CSV link issued to %s", who)
    url = sign_link(settings, SIGNED_CSV_PATH, params, now=now)
    return {"ok": True, "url": url, "expires_in": int(LINK_TTL.total_seconds())}


@router.get(SIGNED_CSV_PATH)
async def export_leads_signed(
    request: Request, settings: SettingsDep, now: NowDep, queries: AdminQueriesDep, where: LeadFilterDep
) -> Response:
    if not link_is_valid(settings, SIGNED_CSV_PATH, request.query_params.multi_items(), now=now):
        raise HTTPException(403, {"reason": "link_expired_or_invalid"})
    return await _csv_response(queries, where)


LEAD_FILTER_PARAMS = ("status", "source", "brand", "date_from", "date_to", "q")


async def _csv_response(queries: AdminQueries, where: LeadFilter) -> Response:
    rows, _total = await queries.leads(where, offset=0, limit=CSV_ROW_LIMIT)
    return Response(
        leads_csv(list(rows)).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="leads.csv"', "Cache-Control": "no-store"},
    )
