"""FastAPI application factory: create_app(settings) wires routers, errors and the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.http import metrics
from adapters.http.admin_guard import AdminLoginGuard
from adapters.http.errors import install_error_handlers
from adapters.http.metrics import MetricsMiddleware
from adapters.http.catalog_answers import CatalogAnswers
from adapters.http.middleware import RequestContextMiddleware
from adapters.http.routers import (
    admin_activity,
    admin_consents,
    admin_leads,
    assistant,
    catalog,
    crm,
    health,
    kb,
    leads,
    legal,
    webapp,
    whoami,
)
from adapters.preflight import Level, run_preflight
from adapters.telegram.http import webhook_answers
from adapters.runtime import Runtime
from adapters.wiring import build_runtime, settle_startup_heap
from agent import __version__
from agent.settings import Settings

log = logging.getLogger(__name__)


class PreflightFailed(RuntimeError):
    pass


class ServiceApp(FastAPI):
    """FastAPI behind ``front``, the request context layer (adapters/http/middleware.py): it is the
    outermost layer, in front of FastAPI's own error, telemetry and body-limit layers too, so the
    webhook it answers itself pays for none of them, and a 500 from FastAPI's error layer carries
    the request id."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None:
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)


async def start_runtime(runtime: Runtime, *, migrate: bool = True) -> None:
    if migrate:
        await runtime.db.migrate()
    report = await run_preflight(runtime.preflight_inputs)
    runtime.preflight = report
    for check in report.checks:
        if check.level is not Level.ok:
            log.warning("preflight %s %s: %s", check.level.value, check.name, check.detail)
    if report.blocking:
        names = ", ".join(c.name for c in report.criticals + report.warnings)
        raise PreflightFailed(
            f"preflight blocked start-up (STARTUP_PREFLIGHT_MODE={report.mode.value}): {names}; "
            "run `python3 scripts/preflight_audit.py` for details"
        )
    await runtime.start_background()
    settle_startup_heap()


def create_app(
    settings: Settings, *, runtime: Runtime | None = None, migrate: bool = True, run_bot: bool = False,
    defer_sdks: bool = False,
) -> FastAPI:
    """``defer_sdks``: load the openai and aiogram SDKs after start-up (`serve`; adapters/deferred_sdks.py)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or build_runtime(settings, run_bot=run_bot, defer_sdks=defer_sdks)
        app.state.runtime = rt  # read by adapters/http/dependencies.py only
        app.state.telegram_queue = rt.telegram.queue if rt.telegram is not None else None
        health_task = None
        try:
            await start_runtime(rt, migrate=migrate)
            health_task = await health.start_ready_answers(app, rt)
            yield
        finally:
            if health_task is not None:
                health_task.cancel()
            await rt.close()

    app = ServiceApp(
        title="Sales assistant",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_error_handlers(app)
    app.state.catalog_answers = CatalogAnswers()
    # The hot GET routes first: the router tries each route's pattern in order.
    app.include_router(health.router)
    app.include_router(catalog.router)
    app.include_router(whoami.router)
    app.include_router(legal.router)
    app.include_router(leads.router)
    app.include_router(admin_leads.router)
    app.include_router(admin_activity.router)
    app.include_router(admin_consents.router)
    app.include_router(assistant.router)
    app.include_router(webapp.router)
    app.include_router(crm.router)
    app.state.admin_login_guard = AdminLoginGuard(settings)
    app.state.lead_limits = leads.LeadLimits.from_settings(settings)
    app.include_router(kb.router)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
        app.add_middleware(MetricsMiddleware)
    # The request id, body limit, checks and access log every request gets, in front of all of
    # FastAPI; the webhook is answered right there.
    app.front = RequestContextMiddleware(
        super(ServiceApp, app).__call__, answers=webhook_answers(settings, app.state)
    )
    return app
