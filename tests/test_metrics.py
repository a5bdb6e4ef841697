from __future__ import annotations

from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from adapters.http.app import create_app
from adapters.storage.models import Lead, ModelUsage, TelegramUpdate
from tests.conftest import make_settings

AUTH = ("admin", "a-long-test-password")


async def test_metrics_off_by_default(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    async with LifespanManager(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            assert (await client.get("/metrics", auth=AUTH)).status_code == 404


async def test_metrics_need_admin_and_report_traffic_and_queue(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, metrics_enabled=True))
    async with LifespanManager(app) as manager:
        runtime = app.state.runtime
        async with runtime.db.session() as session:
            session.add(TelegramUpdate(update_id=1, chat_id=5, payload="{}", status="queued"))
            session.add(TelegramUpdate(update_id=2, chat_id=5, payload="{}", status="dead"))
            session.add(Lead(brand="kmipt", channel="api", phone="+79990000000", crm_status="delivered"))
            session.add(ModelUsage(model="gpt-4.1", input_tokens=100, output_tokens=20, total_tokens=120))
            await session.commit()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            await client.get("/api/health")
            await client.get("/no/such/thing")
            assert (await client.get("/metrics")).status_code == 401
            body = (await client.get("/metrics", auth=AUTH)).text
    assert 'http_requests_total{method="GET",route="/api/health",status="200"}' in body
    assert 'route="unmatched",status="404"' in body
    assert 'telegram_updates{state="queued"} 1.0' in body and 'telegram_updates{state="dead"} 1.0' in body
    assert 'leads{crm_status="delivered"} 1.0' in body
    assert 'model_tokens{kind="input"} 100.0' in body
    assert "a-long-test-password" not in body
