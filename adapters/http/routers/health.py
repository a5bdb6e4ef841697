"""Liveness, runtime diagnostics and the landing page: hot paths answered from ready bytes
(adapters/http/ready.py) that ``start_ready_answers`` sets up when the app starts."""

from __future__ import annotations

import asyncio
import html
from datetime import datetime
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from adapters.http.ready import DatabaseHealth, TtlAnswer, json_bytes, ready_json
from adapters.preflight import Level, Report
from adapters.storage.database import Database
from adapters.storage.models import utcnow
from agent.paths import DataPaths
from agent.settings import Settings

router = APIRouter()


class ServiceFacts(Protocol):
    """What health, diagnostics and the landing page read of the running service (the runtime)."""

    settings: Settings
    paths: DataPaths
    db: Database
    version: str
    started_at: datetime
    preflight: Report | None
    telegram: Any  # the Telegram adapter (its queue's counts), or None


async def start_ready_answers(app: FastAPI, runtime: ServiceFacts) -> asyncio.Task[None]:
    """Health's first database check, then its refresh task (returned: the caller cancels it)."""
    up = {"status": "up", "version": runtime.version, "database": runtime.db.backend}
    app.state.health = health_check = DatabaseHealth(lambda: runtime.db.ping(), up)
    app.state.diagnostics = TtlAnswer(lambda: _diagnostics_bytes(runtime))
    app.state.landing = _landing(runtime).encode()
    await health_check.check()
    return asyncio.create_task(health_check.run(), name="health-check")


@router.get("/api/health")
async def health(request: Request) -> Response:
    """200 from the last database check (every second), 503 once one fails."""
    status, body = await request.app.state.health.answer()
    return ready_json(body, status)


@router.get("/api/runtime/diagnostics", response_model=dict[str, object])
async def diagnostics(request: Request) -> Response:
    """Operational facts for the runbook's checks, at most a second old. Never a secret or anything
    derived from one."""
    return ready_json(await request.app.state.diagnostics.get())


async def _diagnostics_bytes(runtime: ServiceFacts) -> bytes:
    return json_bytes(await diagnostics_body(runtime))


async def diagnostics_body(runtime: ServiceFacts) -> dict[str, object]:
    settings, paths = runtime.settings, runtime.paths
    report = runtime.preflight
    warnings = [f"{c.name}: {c.detail}" for c in report.checks if c.level is not Level.ok and c.public] if report else []
    return {
        "ok": True,
        "runtime": {
            "version": runtime.version,
            "started_at": runtime.started_at.isoformat(),
            "uptime_seconds": int((utcnow() - runtime.started_at).total_seconds()),
            "running_on_render": settings.running_on_render,
            "persistent_data_root": str(paths.root),
            "persistent_data_root_source": paths.root_source,
            "database_backend": runtime.db.backend,
            "database_on_persistent_storage": runtime.db.is_sqlite is False or paths.database_on_persistent_storage,
            "vector_meta_on_persistent_storage": paths.vector_meta_on_persistent_storage,
            "telegram_mode": settings.telegram_mode.value,
            # Never the webhook path: without a secret it is the only thing between a forger and the bot.
            "telegram_webhook_authenticated": settings.telegram_webhook_secret is not None,
            "telegram_configured": settings.telegram_bot_token is not None,
            "llm_configured": settings.llm_configured,
            "llm_model": settings.openai_model,
            "vector_store_configured": bool(settings.openai_vector_store_id),
            "crm_provider": settings.crm_provider.value,
            "brand_default": settings.brand_default,
            "admin_miniapp_enabled": settings.admin_miniapp_enabled,
            "preflight_mode": settings.startup_preflight_mode.value,
        },
        "telegram_queue": await _telegram_queue(runtime),
        "warnings": warnings,
        "preflight": report.as_dict(public_only=True) if report else None,
    }


async def _telegram_queue(runtime: ServiceFacts) -> dict[str, object] | None:
    """Queue counts, so dead-lettered Telegram updates show up in the runbook's diagnostics check."""
    if runtime.telegram is None:
        return None
    try:
        return await runtime.telegram.queue.stats()
    except Exception as error:
        return {"error": type(error).__name__}


_LANDING = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}
code{{background:#f3f3f3;padding:.1rem .3rem;border-radius:.2rem}}</style></head>
<body><h1>{title}</h1>
<p>Ассистент по подбору курсов: отвечает на вопросы, подбирает программы и принимает заявки.</p>
<ul>
<li><a href="/app">Мини-приложение: подбор курса и заявка</a></li>
<li><a href="/api/health"><code>/api/health</code></a> — состояние сервиса</li>
<li><a href="/api/runtime/diagnostics"><code>/api/runtime/diagnostics</code></a> — диагностика</li>
</ul>
<p><small>Версия {version}</small></p></body></html>"""


def _landing(runtime: ServiceFacts) -> str:
    title = html.escape(f"Sales assistant — {runtime.settings.brand_default}")
    return _LANDING.format(title=title, version=html.escape(runtime.version))


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request) -> HTMLResponse:
    return HTMLResponse(request.app.state.landing)
