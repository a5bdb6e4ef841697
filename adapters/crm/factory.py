"""Pick the CRM implementation CRM_PROVIDER names; `none` keeps leads in the database only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.http.ratelimit import SharedSpacing
from agent.errors import CrmError
from agent.ports import CRM, CrmLookupResult, CrmPushResult, LeadPayload
from agent.settings import CrmProvider, Settings

if TYPE_CHECKING:
    import httpx


class NoCRM:
    """CRM_PROVIDER=none: leads live in the database and the admin views; look-ups find nothing."""

    name = CrmProvider.none.value

    async def push_lead(self, lead: LeadPayload) -> CrmPushResult:
        raise CrmError("no CRM is configured (CRM_PROVIDER=none)", retryable=False, kind="disabled")

    async def lookup(self, phone: str) -> CrmLookupResult:
        return CrmLookupResult(found=False)

    async def check(self) -> None:
        return None


def _secret(value: object) -> str:
    return value.get_secret_value() if value is not None else ""  # type: ignore[attr-defined]


def build_crm(settings: Settings, http: httpx.AsyncClient | None) -> CRM:
    """The configured provider; a real one needs ``http`` (preflight reports missing settings)."""
    if settings.crm_provider is CrmProvider.none or http is None:
        return NoCRM()
    # The clients (and httpx) are imported only for the provider in use: `none` starts without them.
    if settings.crm_provider is CrmProvider.tallanto:
        from adapters.crm.tallanto import TallantoCRM

        token = settings.tallanto_api_token or settings.tallanto_api_key
        return TallantoCRM(
            http,
            settings.tallanto_api_url or "",
            _secret(token),
            contact_module=settings.tallanto_default_contact_module,
            read_only=settings.tallanto_read_only_enabled,
        )
    from adapters.crm.amo import REQUESTS_PER_SECOND, AmoCRM

    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    # The account's limit holds for every process together: shared through Redis when there is one,
    # evenly spaced, at most 5 used in any second on Redis's clock right before the request (a moving
    # window of 5 let 10 reach amo in one second from 3 loaded processes pushing 90 leads: bench/scale_amo.py).
    shared = SharedSpacing(redis_url, "amo", REQUESTS_PER_SECOND) if redis_url else None
    return AmoCRM(http, settings.amo_api_url or "", _secret(settings.amo_access_token), shared_pace=shared)
