"""Tallanto over its REST API (`…/service/api/rest.php?method=…`, X-Auth-Token, form-encoded bodies).

A push finds the contact by phone first (every stored format, mobile and work fields) and updates it
instead of creating a second one, so a retry after a timed-out create is harmless. With
TALLANTO_READ_ONLY=1 every write method is refused before a request leaves.
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.crm.anonymise import from_tallanto
from adapters.crm.http import json_body, status_error, transport_error, unexpected
from adapters.crm.payload import lead_comment, lead_title
from agent.errors import CrmError
from agent.phones import phone_variants
from agent.ports import CrmLookupResult, CrmPushResult, LeadPayload

PROVIDER = "tallanto"
REST_PATH = "/service/api/rest.php"
READ_METHODS = frozenset(
    {
        "list_possible_modules",
        "list_possible_fields",
        "list_possible_fields_doc",
        "list_enum_values",
        "get_entry_by_id",
        "get_entry_by_fields",
        "get_entry_list",
    }
)
NOT_FOUND_NUMBER = 1502
# The runbook names modules in lower-case plural (TALLANTO_DEFAULT_CONTACT_MODULE=contacts); the API
# wants its own names. Anything else is passed through as the operator wrote it.
MODULE_ALIASES = {
    "contacts": "Contact",
    "contact": "Contact",
    "students": "Contact",
    "opportunities": "Opportunity",
    "requests": "Request",
    "users": "User",
}
PHONE_FIELDS = ("phone_mobile", "phone_work")
COMMENT_FIELD = "description"
PROSPECT_TYPE = "Потенциальный клиент"
DEFAULT_FIRST_NAME = "Клиент из чат-бота"


def rest_endpoint(api_url: str) -> str:
    base = api_url.strip().rstrip("/")
    return base if base.endswith(REST_PATH) else base + REST_PATH


def api_module(name: str) -> str:
    return MODULE_ALIASES.get(name.strip().lower(), name.strip())


def first_record(answer: Any) -> dict[str, Any] | None:
    """get_entry_by_fields and set_entry answer with a flat record or {"entry_list": [...]}."""
    if isinstance(answer, dict) and "entry_list" in answer:
        entries = answer["entry_list"]
        if isinstance(entries, list):
            return next((e for e in entries if isinstance(e, dict)), None)
        if isinstance(entries, dict):  # some tenants key the list by id
            return next((e for e in entries.values() if isinstance(e, dict)), None)
        return None
    if isinstance(answer, dict) and answer.get("id"):
        return answer
    return None


class TallantoCRM:
    name = PROVIDER

    def __init__(
        self, http: httpx.AsyncClient, api_url: str, token: str, *, contact_module: str, read_only: bool
    ) -> None:
        self._http = http
        self._url = rest_endpoint(api_url)
        self._headers = {"X-Auth-Token": token, "Accept": "application/json"}
        self.contact_module = api_module(contact_module)
        self.read_only = read_only

    async def call(
        self, method: str, *, query: dict[str, str] | None = None, form: dict[str, str] | None = None
    ) -> Any | None:
        """One API call; None when Tallanto answers «entry does not exist»."""
        if self.read_only and method not in READ_METHODS:
            raise CrmError(
                f"tallanto {method}: refused, TALLANTO_READ_ONLY=1 allows read methods only",
                retryable=False,
                kind="read_only",
            )
        params = {"method": method, **(query or {})}
        try:
            if form is None:
                response = await self._http.get(self._url, params=params, headers=self._headers)
            else:
                response = await self._http.post(self._url, params=params, data=form, headers=self._headers)
        except httpx.HTTPError as error:
            raise transport_error(PROVIDER, method, error) from None
        if response.is_success:
            return json_body(PROVIDER, method, response)
        payload = _error_payload(response)
        if response.status_code == 400 and payload.get("number") == NOT_FOUND_NUMBER:
            return None
        detail = " ".join(str(payload[k]) for k in ("number", "name") if payload.get(k) is not None)
        raise status_error(PROVIDER, method, response, detail)

    async def entry_by_fields(self, module: str, fields: dict[str, str]) -> dict[str, Any] | None:
        query = {"module": api_module(module), **{f"fields_values[{k}]": v for k, v in fields.items()}}
        answer = await self.call("get_entry_by_fields", query=query)
        if answer is None or answer == [] or answer == {}:
            return None
        record = first_record(answer)
        if record is None and not (isinstance(answer, dict) and answer.get("entry_list") == []):
            raise unexpected(PROVIDER, "get_entry_by_fields", "no record and no entry_list")
        return record

    async def find_by_phone(self, phone: str, module: str | None = None) -> dict[str, Any] | None:
        for field in PHONE_FIELDS:
            for variant in phone_variants(phone):
                record = await self.entry_by_fields(module or self.contact_module, {field: variant})
                if record is not None:
                    return record
        return None

    async def set_entry(self, fields: dict[str, str], *, entry_id: str | None = None) -> str:
        query = {"module": self.contact_module, **({"id": entry_id} if entry_id else {})}
        form = {f"fields_values[{k}]": v for k, v in fields.items()}
        record = first_record(await self.call("set_entry", query=query, form=form))
        if record is None or not record.get("id"):
            raise unexpected(PROVIDER, "set_entry", "no id in the answer")
        return str(record["id"])

    async def push_lead(self, lead: LeadPayload) -> CrmPushResult:
        comment = lead_comment(lead)
        contact_id = lead.known_ids.get("contact_id")
        existing = None if contact_id else await self.find_by_phone(lead.phone)
        if existing is None and contact_id is None:
            new_id = await self.set_entry(
                {
                    "first_name": lead.name or DEFAULT_FIRST_NAME,
                    "phone_mobile": lead.phone,
                    "type_client_c": PROSPECT_TYPE,
                    COMMENT_FIELD: comment,
                }
            )
            return CrmPushResult(crm_ids={"contact_id": new_id}, created=True)
        contact_id = contact_id or str(existing["id"])  # type: ignore[index]
        previous = str((existing or {}).get(COMMENT_FIELD) or "")
        # A retry whose first attempt did reach Tallanto finds its own comment: nothing more to write.
        if lead_title(lead) not in previous:
            # An existing client keeps their type and name; the new request goes on top of the history.
            updated = comment + ("\n\n" + previous if previous else "")
            fields = {COMMENT_FIELD: updated}
            if existing is not None and not existing.get("first_name") and lead.name:
                fields["first_name"] = lead.name
            await self.set_entry(fields, entry_id=contact_id)
        return CrmPushResult(crm_ids={"contact_id": contact_id}, created=False)

    async def lookup(self, phone: str) -> CrmLookupResult:
        record = await self.find_by_phone(phone)
        return from_tallanto(record) if record else CrmLookupResult(found=False)

    async def lookup_field(self, module: str, field: str, value: str) -> CrmLookupResult:
        """The read-only API's lookup: `phone` searches every phone format, other fields as given."""
        if field == "phone":
            record = await self.find_by_phone(value, module)
        else:
            record = await self.entry_by_fields(module, {field: value})
        return from_tallanto(record) if record else CrmLookupResult(found=False)

    async def modules(self) -> list[dict[str, str]]:
        answer = await self.call("list_possible_modules")
        if not isinstance(answer, dict):
            raise unexpected(PROVIDER, "list_possible_modules", "not an object")
        return [
            {"label": str(label), "module": str(info.get("module", label)) if isinstance(info, dict) else str(info)}
            for label, info in answer.items()
        ]

    async def fields(self, module: str) -> list[dict[str, str]]:
        answer = await self.call("list_possible_fields", query={"module": api_module(module)})
        if answer is None:
            return []
        if not isinstance(answer, dict):
            raise unexpected(PROVIDER, "list_possible_fields", "not an object")
        return [
            {"name": str(name), "label": str(info.get("label", "")) if isinstance(info, dict) else str(info)}
            for name, info in answer.items()
        ]

    async def check(self) -> None:
        await self.modules()


def _error_payload(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
