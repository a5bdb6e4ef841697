"""The runbook's read-only Tallanto API: /api/crm/meta/modules, /api/crm/meta/fields, /api/crm/lookup.

Open only with CRM_PROVIDER=tallanto, TALLANTO_READ_ONLY=1 (the literal) and CRM_API_EXPOSED=true;
otherwise every path answers 404 {"reason": "crm_api_disabled"}. The per-IP limit is taken before the
admin password is checked, so guessing passwords costs requests too. Look-ups answer anonymised context
only (found, tags, interests, last_touch_days).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from adapters.http.auth import AdminDep, client_ip
from adapters.http.dependencies import CrmApiLimiterDep, CrmDep, SettingsDep
from agent.errors import CrmError
from agent.settings import CrmProvider, Settings

if TYPE_CHECKING:
    # Imported when the API is open (CRM_PROVIDER=tallanto has loaded it): the Tallanto client brings
    # httpx, which a service without a CRM does not need to start.
    from adapters.crm.tallanto import TallantoCRM

MODULE_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
FIELD_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


def crm_api_enabled(settings: Settings) -> bool:
    return (
        settings.crm_provider is CrmProvider.tallanto
        and settings.tallanto_read_only_enabled
        and settings.crm_api_exposed
    )


async def _open_and_within_limit(
    request: Request, settings: SettingsDep, crm: CrmDep, limiter: CrmApiLimiterDep
) -> None:
    if not crm_api_enabled(settings) or _as_tallanto(crm) is None:
        raise HTTPException(404, {"reason": "crm_api_disabled"})
    decision = await limiter.hit(client_ip(request, settings.trusted_proxy_ips))
    if not decision.allowed:
        raise HTTPException(429, {"reason": "rate_limited"}, headers={"Retry-After": str(decision.retry_after)})


# Router dependencies run before the endpoint's own (AdminDep), which is the order the limit needs.
router = APIRouter(prefix="/api/crm", tags=["crm"], dependencies=[Depends(_open_and_within_limit)])


def _as_tallanto(crm: object) -> TallantoCRM | None:
    from adapters.crm.tallanto import TallantoCRM

    return crm if isinstance(crm, TallantoCRM) else None


def _tallanto(crm: CrmDep) -> TallantoCRM:
    tallanto = _as_tallanto(crm)
    assert tallanto is not None  # guaranteed by _open_and_within_limit
    return tallanto


TallantoDep = Annotated["TallantoCRM", Depends(_tallanto)]
ModuleQuery = Annotated[str | None, Query(pattern=MODULE_PATTERN)]


def _upstream_error(error: CrmError) -> HTTPException:
    if error.kind == "rate_limited":
        retry = str(int(error.retry_after or 1))
        return HTTPException(503, {"reason": "crm_unavailable", "kind": error.kind}, headers={"Retry-After": retry})
    status = 504 if error.kind == "timeout" else 502
    return HTTPException(status, {"reason": "crm_unavailable", "kind": error.kind})


@router.get("/meta/modules")
async def modules(_: AdminDep, crm: TallantoDep) -> dict[str, object]:
    try:
        return {"ok": True, "modules": await crm.modules()}
    except CrmError as error:
        raise _upstream_error(error) from None


@router.get("/meta/fields")
async def fields(_: AdminDep, crm: TallantoDep, module: ModuleQuery = None) -> dict[str, object]:
    from adapters.crm.tallanto import api_module

    name = api_module(module) if module else crm.contact_module
    try:
        return {"ok": True, "module": name, "fields": await crm.fields(name)}
    except CrmError as error:
        raise _upstream_error(error) from None


@router.get("/lookup")
async def lookup(
    _: AdminDep,
    crm: TallantoDep,
    field: Annotated[str, Query(pattern=FIELD_PATTERN)],
    value: Annotated[str, Query(min_length=1, max_length=128)],
    module: ModuleQuery = None,
) -> dict[str, object]:
    try:
        result = await crm.lookup_field(module or crm.contact_module, field, value)
    except CrmError as error:
        raise _upstream_error(error) from None
    return {"ok": True, **result.model_dump()}
