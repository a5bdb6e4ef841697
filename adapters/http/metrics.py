"""Prometheus metrics: HTTP traffic from a pure ASGI middleware, business figures from the database.

The database-derived gauges (queue states, lag, leads, model usage) are read at scrape time, so
they are true for the whole deployment even when several processes share one PostgreSQL.
"""

from __future__ import annotations

import time
from datetime import UTC

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func
from sqlmodel import select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.counters import (
    HTTP_LATENCY,
    HTTP_REQUESTS,
    LEADS,
    MODEL_CALLS,
    MODEL_TOKENS,
    REGISTRY,
    TELEGRAM_LAG,
    TELEGRAM_UPDATES,
)
from adapters.http.auth import AdminDep
from adapters.http.dependencies import DatabaseDep
from adapters.storage.database import Database
from adapters.storage.models import Lead, ModelUsage, TelegramUpdate, utcnow

QUEUE_STATES = ("queued", "processing", "retry", "done", "dead")
CRM_STATES = ("pending", "delivered", "failed", "skipped")


class MetricsMiddleware:
    """Counts requests by route template (never the raw path, so ids don't explode the labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_LATENCY.labels(method, template).observe(time.perf_counter() - started)


router = APIRouter()


async def _refresh_from_database(db: Database) -> None:
    async with db.session() as session:
        counts = dict((await session.exec(
            select(TelegramUpdate.status, func.count()).group_by(TelegramUpdate.status)
        )).all())
        oldest = (await session.exec(
            select(func.min(TelegramUpdate.created_at)).where(TelegramUpdate.status.in_(("queued", "retry")))
        )).one()
        leads = dict((await session.exec(select(Lead.crm_status, func.count()).group_by(Lead.crm_status))).all())
        usage = (await session.exec(
            select(ModelUsage.purpose, func.count(), func.coalesce(func.sum(ModelUsage.input_tokens), 0),
                   func.coalesce(func.sum(ModelUsage.output_tokens), 0)).group_by(ModelUsage.purpose)
        )).all()
    for state in QUEUE_STATES:
        TELEGRAM_UPDATES.labels(state).set(counts.get(state, 0))
    if oldest is not None and oldest.tzinfo is None:  # raw aggregate bypasses the UTC column type
        oldest = oldest.replace(tzinfo=UTC)
    TELEGRAM_LAG.set((utcnow() - oldest).total_seconds() if oldest else 0)
    for state in CRM_STATES:
        LEADS.labels(state).set(leads.get(state, 0))
    input_total = output_total = 0
    for purpose, calls, input_tokens, output_tokens in usage:
        MODEL_CALLS.labels(purpose).set(calls)
        input_total += int(input_tokens)
        output_total += int(output_tokens)
    MODEL_TOKENS.labels("input").set(input_total)
    MODEL_TOKENS.labels("output").set(output_total)


@router.get("/metrics", include_in_schema=False)
async def metrics(db: DatabaseDep, _: AdminDep) -> Response:
    await _refresh_from_database(db)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
