"""Fake Tallanto and amoCRM servers speaking the documented protocols (shared/reference/crm-apis.md).

They check what the real services check — the token, a form body where a form is expected, the PHONE
field of an amo contact — keep what was written, log every request with its arrival time, and can be
told to fail: be down (503), answer garbage, answer late after applying a write (a client timeout
that still created the record), or rate-limit like amo (429 over 7 requests in a second).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

FORM = "application/x-www-form-urlencoded"


@dataclass
class Logged:
    at: float
    method: str
    path: str
    query: list[tuple[str, str]]
    content_type: str
    status: int = 0


@dataclass
class Faults:
    down: bool = False  # every request answers 503
    garbage: bool = False  # every request answers 200 with an HTML page
    late_writes: int = 0  # the next N writes are applied, then answered after `late_seconds`
    late_seconds: float = 0.0
    retry_after: int | None = None  # sent with 503 when down


@dataclass
class FakeBase:
    token: str
    url: str = ""  # set by tests.crm_helpers.serving()
    faults: Faults = field(default_factory=Faults)
    log: list[Logged] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1001))

    def record(self, request: Request) -> Logged:
        entry = Logged(
            time.monotonic(),
            request.method,
            request.url.path,
            list(request.query_params.multi_items()),
            request.headers.get("content-type", ""),
        )
        with self.lock:
            self.log.append(entry)
        return entry

    def fault_response(self) -> Response | None:
        if self.faults.down:
            headers = {"Retry-After": str(self.faults.retry_after)} if self.faults.retry_after is not None else {}
            return PlainTextResponse("upstream down", 503, headers=headers)
        if self.faults.garbage:
            return PlainTextResponse("<html><body>502 Bad Gateway</body></html>", 200, media_type="text/html")
        return None

    def take_late_write(self) -> float:
        with self.lock:
            if self.faults.late_writes > 0:
                self.faults.late_writes -= 1
                return self.faults.late_seconds
        return 0.0


# --------------------------------------------------------------------------------------------- Tallanto

TALLANTO_READS = {"list_possible_modules", "list_possible_fields", "get_entry_by_fields", "get_entry_by_id"}
TALLANTO_MODULES = {"Ученики": {"module": "Contact"}, "Сделки": {"module": "Opportunity"}}
TALLANTO_FIELDS = {
    name: {"label": label}
    for name, label in {
        "id": "ID",
        "first_name": "Имя",
        "last_name": "Фамилия",
        "phone_mobile": "Мобильный",
        "phone_work": "Рабочий",
        "type_client_c": "Тип клиента",
        "description": "Комментарий",
        "date_modified": "Изменён",
    }.items()
}


@dataclass
class FakeTallanto(FakeBase):
    contacts: dict[str, dict[str, str]] = field(default_factory=dict)
    wrap_entry_list: bool = False  # answer get_entry_by_fields as {"entry_list": [...]}

    @property
    def writes(self) -> list[Logged]:
        return [e for e in self.log if ("method", "set_entry") in e.query or ("method", "delete_entry") in e.query]

    def add_contact(self, **fields: str) -> str:
        contact_id = str(next(self.ids))
        self.contacts[contact_id] = {"id": contact_id, **fields}
        return contact_id

    def contacts_with_phone(self, phone: str) -> list[dict[str, str]]:
        return [c for c in self.contacts.values() if phone in (c.get("phone_mobile"), c.get("phone_work"))]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/service/api/rest.php", methods=["GET", "POST"])
        async def rest(request: Request) -> Response:
            entry = self.record(request)
            response = await self.answer(request)
            entry.status = response.status_code
            return response

        return app

    async def answer(self, request: Request) -> Response:
        if request.headers.get("x-auth-token") != self.token:
            return JSONResponse({"name": "Access denied", "number": 401, "description": "Invalid token"}, 401)
        fault = self.fault_response()
        if fault is not None:
            return fault
        query = dict(request.query_params)
        method = query.get("method", "")
        if method == "list_possible_modules":
            return JSONResponse(TALLANTO_MODULES)
        if method == "list_possible_fields":
            if query.get("module") != "Contact":
                return JSONResponse({"name": "Unknown module", "number": 1001, "description": "No module"}, 400)
            return JSONResponse(TALLANTO_FIELDS)
        if method == "get_entry_by_fields":
            wanted = {k[len("fields_values[") : -1]: v for k, v in query.items() if k.startswith("fields_values[")}
            found = [c for c in self.contacts.values() if all(c.get(k) == v for k, v in wanted.items())]
            if query.get("module") != "Contact" or not wanted or not found:
                return JSONResponse({"name": "Not find by id", "number": 1502, "description": "Entry does not exist"}, 400)
            return JSONResponse({"entry_list": found[:1]} if self.wrap_entry_list else found[0])
        if method == "set_entry":
            return await self.set_entry(request, query)
        return JSONResponse({"name": "Unknown method", "number": 1000, "description": method}, 400)

    async def set_entry(self, request: Request, query: dict[str, str]) -> Response:
        if request.method != "POST" or not request.headers.get("content-type", "").startswith(FORM):
            return JSONResponse({"name": "Bad request", "number": 1003, "description": "form body expected"}, 400)
        body = dict(parse_qsl((await request.body()).decode("utf-8")))
        fields = {k[len("fields_values[") : -1]: v for k, v in body.items() if k.startswith("fields_values[")}
        if not fields:
            return JSONResponse({"name": "Bad request", "number": 1003, "description": "no fields"}, 400)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self.lock:
            if "id" in query:
                if query["id"] not in self.contacts:
                    return JSONResponse({"name": "Not find by id", "number": 1502, "description": "no entry"}, 400)
                record = self.contacts[query["id"]]
                record.update(fields)
            else:
                if not fields.get("phone_mobile"):
                    return JSONResponse({"name": "Bad request", "number": 1004, "description": "phone required"}, 400)
                record = {"id": str(next(self.ids)), "date_entered": stamp, **fields}
                self.contacts[record["id"]] = record
            record["date_modified"] = stamp
            answer = dict(record)
        await asyncio.sleep(self.take_late_write())
        return JSONResponse(answer)


# --------------------------------------------------------------------------------------------------- amo

AMO_LIMIT_PER_SECOND = 7


def problem(status: int, title: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"title": title, "status": status, **extra}, status, media_type="application/problem+json")


@dataclass
class FakeAmo(FakeBase):
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: dict[int, list[str]] = field(default_factory=dict)
    notes_down: bool = False  # notes answer 503 while leads still work (a half-finished push)
    limit_per_second: int = AMO_LIMIT_PER_SECOND

    def over_limit(self, now: float) -> bool:
        with self.lock:
            recent = [e for e in self.log if now - e.at < 1.0]
        return len(recent) > self.limit_per_second

    def leads_named(self, name: str) -> list[dict[str, Any]]:
        return [lead for lead in self.leads.values() if lead["name"] == name]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/api/v4/{path:path}", methods=["GET", "POST"])
        async def api(request: Request, path: str) -> Response:
            entry = self.record(request)
            response = await self.answer(request, path, entry)
            entry.status = response.status_code
            return response

        return app

    async def answer(self, request: Request, path: str, entry: Logged) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return problem(401, "Unauthorized", detail="Token is invalid")
        if self.over_limit(entry.at):
            return JSONResponse(
                {"title": "Too Many Requests", "status": 429},
                429,
                media_type="application/problem+json",
                headers={"Retry-After": "1"},
            )
        fault = self.fault_response()
        if fault is not None:
            return fault
        if request.method == "POST" and request.headers.get("content-type", "") != "application/json":
            return problem(415, "Unsupported Media Type")
        parts = path.strip("/").split("/")
        if request.method == "GET" and parts == ["account"]:
            return JSONResponse({"id": 42, "name": "fake account"}, media_type="application/hal+json")
        if request.method == "GET" and parts == ["contacts"]:
            return self.search_contacts(request.query_params.get("query", ""))
        if request.method == "GET" and parts == ["leads"]:
            wanted = {int(v) for k, v in request.query_params.multi_items() if k == "filter[id][]"}
            found = [{"id": i, "name": self.leads[i]["name"]} for i in sorted(wanted) if i in self.leads]
            return JSONResponse({"_embedded": {"leads": found}}) if found else Response(status_code=204)
        if request.method == "POST" and parts == ["leads", "complex"]:
            return await self.create_complex(json.loads(await request.body()))
        if request.method == "POST" and len(parts) == 3 and parts[0] == "leads" and parts[2] == "notes":
            return self.add_notes(int(parts[1]), json.loads(await request.body()))
        return problem(404, "Not Found")

    def search_contacts(self, query: str) -> Response:
        found = [c for c in self.contacts.values() if query and any(query in p for p in c["phones"])]
        if not found:
            return Response(status_code=204)
        body = [
            {
                "id": c["id"],
                "name": c["first_name"],
                "updated_at": c["updated_at"],
                "custom_fields_values": [{"field_code": "PHONE", "values": [{"value": p} for p in c["phones"]]}],
                "_embedded": {"tags": [{"name": t} for t in c["tags"]], "leads": [{"id": i} for i in c["leads"]]},
            }
            for c in found
        ]
        return JSONResponse({"_embedded": {"contacts": body}}, media_type="application/hal+json")

    async def create_complex(self, body: Any) -> Response:
        if not isinstance(body, list) or not body or len(body) > 50:
            return problem(400, "Bad Request", detail="array of leads expected")
        for index, lead in enumerate(body):
            contacts = lead.get("_embedded", {}).get("contacts", [])
            phones = [
                v.get("value")
                for c in contacts[:1]
                for f in c.get("custom_fields_values", [])
                if f.get("field_code") == "PHONE"
                for v in f.get("values", [])
            ]
            if not lead.get("name") or not contacts or not phones:
                errors = [{"request_id": str(index), "errors": [{"path": "contacts.PHONE", "code": "NotBlank"}]}]
                return problem(400, "Bad Request", detail="Request validation failed", **{"validation-errors": errors})
        answer = []
        with self.lock:
            for index, lead in enumerate(body):
                contact_data = lead["_embedded"]["contacts"][0]
                phone = contact_data["custom_fields_values"][0]["values"][0]["value"]
                contact = next((c for c in self.contacts.values() if phone in c["phones"]), None)
                merged = contact is not None
                if contact is None:
                    contact_id = next(self.ids)
                    contact = {"id": contact_id, "first_name": contact_data.get("first_name", ""), "phones": [phone], "tags": [], "leads": []}
                    self.contacts[contact_id] = contact
                contact["updated_at"] = int(time.time())
                lead_id = next(self.ids)
                tags = [t["name"] for t in lead["_embedded"].get("tags", [])]
                self.leads[lead_id] = {"id": lead_id, "name": lead["name"], "tags": tags, "contact_id": contact["id"]}
                contact["leads"].append(lead_id)
                answer.append({"id": lead_id, "contact_id": contact["id"], "company_id": None, "request_id": [str(index)], "merged": merged})
        await asyncio.sleep(self.take_late_write())
        return JSONResponse(answer)

    def add_notes(self, lead_id: int, body: Any) -> Response:
        if self.notes_down:
            return problem(503, "Service Unavailable")
        if lead_id not in self.leads:
            return problem(404, "Not Found")
        if not isinstance(body, list) or not all(n.get("note_type") == "common" for n in body):
            return problem(400, "Bad Request", detail="notes array expected")
        created = []
        with self.lock:
            for note in body:
                self.notes.setdefault(lead_id, []).append(note["params"]["text"])
                created.append({"id": next(self.ids), "entity_id": lead_id})
        return JSONResponse({"_total_items": len(created), "_embedded": {"notes": created}})
