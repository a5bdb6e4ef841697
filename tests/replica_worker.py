"""One replica's share of a multi-process test (tests/test_replicas.py): the production classes,
built from Settings as the service builds them, in a process of their own.

    python -m tests.replica_worker telegram-send API_URL CHAT[,CHAT...]
    python -m tests.replica_worker amo-check AMO_URL COUNT
    python -m tests.replica_worker amo-push AMO_URL COUNT FIRST
    python -m tests.replica_worker record-tokens DATABASE_URL USER_ID TOKENS

Settings come from the environment (REDIS_URL present or not is what the tests compare). The senders
print "ready" once built and start when a line arrives on stdin, so the test lets them all go at once.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agent.settings import Settings

TOKEN = "123456789:AAF_replica-test-token-for-the-fake-api-0"
AMO_TOKEN = "fake-crm-token-7f3a"


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]  # the environment fills in the rest


async def _ready_set_go() -> None:
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def telegram_send(api_url: str, chats: list[int]) -> None:
    from adapters.http.ratelimit import make_storage
    from adapters.telegram.sender import SendPolicy
    from adapters.telegram.service import make_bot

    config = settings(telegram_bot_token=TOKEN)
    redis_url = config.redis_url.get_secret_value() if config.redis_url else None
    policy = SendPolicy(config, None, make_storage(redis_url))  # type: ignore[arg-type]  # no 403 here
    bot = make_bot(TOKEN, api_url, policy)
    try:
        await _ready_set_go()
        # The chats one after another, as one worker's replies go out.
        await asyncio.gather(*(bot.send_message(chat, f"reply {n}") for n, chat in enumerate(chats)))
    finally:
        await bot.session.close()


async def _amo_replica(amo_url: str, work: Callable[[Any], Awaitable[object]], count: int) -> None:
    """The amo client as the service builds it (build_crm: with REDIS_URL, the shared pace) runs
    ``count`` pieces of work at once; prints when each request was sent, after every limiter."""
    from adapters.crm.factory import build_crm
    from adapters.crm.http import make_http_client

    config = settings(crm_provider="amo", amo_api_url=amo_url, amo_access_token=AMO_TOKEN)
    http = make_http_client(10)
    sent: list[float] = []

    async def stamp(request: object) -> None:  # the moment the client sends it, after every limiter
        sent.append(time.time())

    http.event_hooks["request"].append(stamp)
    crm = build_crm(config, http)
    try:
        await _ready_set_go()
        await asyncio.gather(*(work(crm) for _ in range(count)))
        print(" ".join(f"{t:.6f}" for t in sent), flush=True)
    finally:
        await http.aclose()


async def amo_check(amo_url: str, count: int) -> None:
    await _amo_replica(amo_url, lambda crm: crm.check(), count)


async def amo_push(amo_url: str, count: int, first: int) -> None:
    """``count`` leads pushed at once, as the CRM outbox pushes them (search, create, note: 3 requests each)."""
    from agent.ports import LeadPayload

    numbers = iter(range(first, first + count))

    def push(crm: Any) -> Awaitable[object]:
        n = next(numbers)
        lead = LeadPayload(lead_id=n, brand="kmipt", phone=f"+7999{n:07d}", name="Bench", summary="scale bench")
        return crm.push_lead(lead)

    await _amo_replica(amo_url, push, count)


async def record_tokens(database_url: str, user_id: int, tokens: int) -> None:
    from adapters.storage.database import Database
    from adapters.storage.repositories import ConsentRepository, LeadRepository
    from adapters.storage.stores import SqlStore
    from agent.state import UsageRecord
    from agent.types import Usage

    config = settings()
    db = Database(database_url)
    redis_url = config.redis_url.get_secret_value() if config.redis_url else None
    store = SqlStore(db, LeadRepository(db), ConsentRepository(db), redis_url=redis_url)
    try:
        usage = Usage(model_calls=1, input_tokens=tokens, total_tokens=tokens)
        await store.record_usage([UsageRecord(conversation_id=None, user_id=user_id, model="m", purpose="turn", usage=usage)])
    finally:
        await store.tokens.aclose()
        await db.dispose()


def main(argv: list[str]) -> None:
    role, *args = argv
    if role == "telegram-send":
        asyncio.run(telegram_send(args[0], [int(c) for c in args[1].split(",")]))
    elif role == "amo-check":
        asyncio.run(amo_check(args[0], int(args[1])))
    elif role == "amo-push":
        asyncio.run(amo_push(args[0], int(args[1]), int(args[2])))
    elif role == "record-tokens":
        asyncio.run(record_tokens(args[0], int(args[1]), int(args[2])))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
