"""amoCRM API v4: a lead with its contact in one `leads/complex` call, then a note with the summary.

Before creating, a push searches the phone's contacts for a deal with this lead's title, so a retry
after a timed-out create reuses the deal instead of making a second one. Ids of a half-finished push
(deal created, note failed) travel back in CrmError.crm_ids and come in again as LeadPayload.known_ids.
Requests are spaced by a leaky bucket to stay under the account's limit of 7 per second; with
REDIS_URL set, every process also takes a slot in one shared one-second window, so N processes
together stay under it too.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import httpx
from aiolimiter import AsyncLimiter

from adapters.crm.anonymise import from_amo
from adapters.http.ratelimit import SharedSpacing
from adapters.crm.http import json_body, status_error, transport_error, unexpected
from adapters.crm.payload import lead_details, lead_title
from agent.errors import CrmError
from agent.phones import normalize_phone
from agent.ports import CrmLookupResult, CrmPushResult, LeadPayload

PROVIDER = "amo"
# amoCRM allows 7 requests/s per account; the spare absorbs network jitter (requests bunching up on
# arrival) and another integration on the same account.
REQUESTS_PER_SECOND = 5
DEFAULT_CONTACT_NAME = "Клиент из чат-бота"
SYSTEM_TAG = "sales-agent"


def complex_body(lead: LeadPayload) -> list[dict[str, Any]]:
    tags = [f"brand:{lead.brand}", *([f"source:{lead.source}"] if lead.source else []), SYSTEM_TAG]
    if lead.is_test:
        tags.append("test")
    contact = {
        "first_name": lead.name or DEFAULT_CONTACT_NAME,
        "custom_fields_values": [{"field_code": "PHONE", "values": [{"enum_code": "WORK", "value": lead.phone}]}],
    }
    return [
        {
            "name": lead_title(lead),
            "price": 0,
            "_embedded": {"tags": [{"name": t} for t in tags], "contacts": [contact]},
        }
    ]


def note_text(lead: LeadPayload) -> str:
    text = lead_details(lead)
    return text + ("\n\nДиалог:\n" + lead.summary if lead.summary else "")


def _embedded(item: Any, key: str) -> list[dict[str, Any]]:
    embedded = item.get("_embedded") if isinstance(item, dict) else None
    values = embedded.get(key) if isinstance(embedded, dict) else None
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []


class AmoCRM:
    name = PROVIDER

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        token: str,
        *,
        requests_per_second: int = REQUESTS_PER_SECOND,
        shared_pace: SharedSpacing | None = None,
    ) -> None:
        self._http = http
        self._base = api_url.strip().rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        # Capacity 1 drained at the rate: requests are evenly spaced, so no one-second window holds more.
        self._limiter = AsyncLimiter(1, 1 / requests_per_second)
        self._shared: AbstractAsyncContextManager[object] = shared_pace or nullcontext()

    async def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> Any | None:
        """One call; None for amo's 204 «nothing found»."""
        action = f"{method} {path}"
        async with self._limiter, self._shared:
            try:
                response = await self._http.request(
                    method, self._base + path, params=params, json=json, headers=self._headers
                )
            except httpx.HTTPError as error:
                raise transport_error(PROVIDER, action, error) from None
        if response.status_code == 204:
            return None
        if not response.is_success:
            raise _problem_error(action, response)
        return json_body(PROVIDER, action, response)

    async def contacts_by_phone(self, phone: str) -> list[dict[str, Any]]:
        # amo's search matches a substring of the stored value, so the ten national digits find
        # +7…, 8… and 7… alike.
        national = normalize_phone(phone)[2:]
        answer = await self.request("GET", "/api/v4/contacts", params={"query": national, "with": "leads"})
        return _embedded(answer, "contacts") if answer is not None else []

    async def find_lead(self, lead: LeadPayload) -> dict[str, str] | None:
        """The deal an earlier attempt created for this lead, if any."""
        for contact in await self.contacts_by_phone(lead.phone):
            lead_ids = [str(item["id"]) for item in _embedded(contact, "leads") if item.get("id")]
            if not lead_ids:
                continue
            answer = await self.request("GET", "/api/v4/leads", params={"filter[id][]": lead_ids[:50]})
            for deal in _embedded(answer, "leads"):
                if deal.get("name") == lead_title(lead):
                    return {"lead_id": str(deal["id"]), "contact_id": str(contact["id"])}
        return None

    async def create_lead(self, lead: LeadPayload) -> dict[str, str]:
        answer = await self.request("POST", "/api/v4/leads/complex", json=complex_body(lead))
        first = answer[0] if isinstance(answer, list) and answer and isinstance(answer[0], dict) else None
        if first is None or not first.get("id"):
            raise unexpected(PROVIDER, "POST /api/v4/leads/complex", "no lead id")
        ids = {"lead_id": str(first["id"])}
        if first.get("contact_id"):
            ids["contact_id"] = str(first["contact_id"])
        return ids

    async def push_lead(self, lead: LeadPayload) -> CrmPushResult:
        ids = dict(lead.known_ids)
        created = False
        if "lead_id" not in ids:
            found = await self.find_lead(lead)
            if found is None:
                found, created = await self.create_lead(lead), True
            ids.update(found)
        if "note_id" not in ids:
            try:
                ids["note_id"] = await self.add_note(ids["lead_id"], note_text(lead))
            except CrmError as error:
                error.crm_ids = dict(ids)
                raise
        return CrmPushResult(crm_ids=ids, created=created)

    async def add_note(self, lead_id: str, text: str) -> str:
        path = f"/api/v4/leads/{lead_id}/notes"
        answer = await self.request("POST", path, json=[{"note_type": "common", "params": {"text": text}}])
        notes = _embedded(answer, "notes")
        if not notes or not notes[0].get("id"):
            raise unexpected(PROVIDER, f"POST {path}", "no note id")
        return str(notes[0]["id"])

    async def lookup(self, phone: str) -> CrmLookupResult:
        contacts = await self.contacts_by_phone(phone)
        return from_amo(contacts[0]) if contacts else CrmLookupResult(found=False)

    async def check(self) -> None:
        answer = await self.request("GET", "/api/v4/account")
        if not isinstance(answer, dict) or "id" not in answer:
            raise unexpected(PROVIDER, "GET /api/v4/account", "no account id")


def _problem_error(action: str, response: httpx.Response) -> CrmError:
    """Map amo's application/problem+json by status, and a 400's validation-errors by payload."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    problem = problem if isinstance(problem, dict) else {}
    detail = " ".join(str(problem[k]) for k in ("title", "detail") if isinstance(problem.get(k), str))
    error = status_error(PROVIDER, action, response, detail)
    if response.status_code == 400 and problem.get("validation-errors"):
        error.kind = "invalid_lead"
    return error
