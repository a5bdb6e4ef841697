"""Bounded HTTP load for scripts/load_smoke.py: N requests at concurrency C, latency percentiles."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

MAX_REQUESTS = 10_000
TARGETS = ("health", "catalog", "assistant")
ASSISTANT_QUESTIONS = [
    "Здравствуйте, какие есть курсы ЕГЭ по математике для 11 класса?",
    "Сколько стоит подготовка к ОГЭ?",
    "Есть ли пробное занятие?",
    "Как оплатить маткапиталом?",
]


@dataclass
class LoadResult:
    durations_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def rate_limited(self) -> int:
        return self.statuses.get("429", 0)

    @property
    def errors(self) -> int:
        # 429 is the limiter doing its job: reported on its own, not as an error.
        return sum(n for status, n in self.statuses.items() if not status.startswith("2") and status != "429")

    @property
    def error_rate(self) -> float:
        return self.errors / self.total if self.total else 1.0

    @property
    def requests_per_second(self) -> float:
        return self.total / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, q: float) -> float:
        if not self.durations_ms:
            return 0.0
        if len(self.durations_ms) == 1:
            return self.durations_ms[0]
        return statistics.quantiles(self.durations_ms, n=100, method="inclusive")[int(q) - 1]


def _request(target: str, index: int, token: str | None, brand: str) -> tuple[str, str, dict]:
    if target == "health":
        return "GET", "/api/health", {}
    if target == "catalog":
        grade = 5 + index % 7
        return "GET", "/api/catalog/search", {"params": {"brand": brand, "grade": grade}}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"message": ASSISTANT_QUESTIONS[index % len(ASSISTANT_QUESTIONS)], "user_id": f"load-{index % 50}", "brand": brand}
    return "POST", "/api/assistant/ask", {"json": body, "headers": headers}


async def run_load(
    base_url: str, target: str, requests: int, concurrency: int, *, token: str | None = None,
    brand: str = "kmipt", timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None,
) -> LoadResult:
    if not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"--requests must be between 1 and {MAX_REQUESTS}")
    if target not in TARGETS:
        raise ValueError(f"--target must be one of {', '.join(TARGETS)}")
    result = LoadResult()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits, transport=transport) as client:

        async def worker() -> None:
            while True:
                try:
                    index = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                method, path, kwargs = _request(target, index, token, brand)
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, **kwargs)
                    status = str(response.status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                result.durations_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[status] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, requests)))))
        result.elapsed_s = time.perf_counter() - started
    return result
