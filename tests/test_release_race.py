"""A release racing a client's message (issue 16's relay): the client's turn loaded the conversation in
human mode, a manager released it, then the turn finished. The turn must not write back the deadline it
loaded (the conversation would silently return to the manager), nor may the release overwrite what the
turn learned about the client. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.runtime import Runtime
from agent.types import Channel, Inbound
from tests.assistant_helpers import Chat


def hold_finish(rt: Runtime) -> tuple[asyncio.Event, asyncio.Event]:
    """Every turn waits between its work and storing its result until ``go`` is set; ``reached`` says a
    turn got there (where a release from another update or process can slip in)."""
    assert rt.assistant is not None
    store = rt.assistant.store
    finish = store.finish_turn
    reached, go = asyncio.Event(), asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> None:
        reached.set()
        await go.wait()
        await finish(*args, **kwargs)

    store.finish_turn = held  # type: ignore[method-assign]
    return reached, go


async def test_a_release_during_a_clients_turn_is_not_undone_by_the_turn(runtime: Runtime) -> None:
    rt = runtime
    assert rt.assistant is not None
    chat = Chat(rt, user_id="801")
    handed = await chat.send(choice="handoff")
    conversation_id = handed.conversation_id
    assert conversation_id is not None
    assert (await rt.conversations.get(conversation_id)).human_mode_until is not None  # type: ignore[union-attr]

    reached, go = hold_finish(rt)
    turn = asyncio.create_task(rt.assistant.handle(
        Inbound(channel=Channel.telegram, user_id="801", text="Алло, вы здесь?", idempotency_key="telegram:801:race")))
    await asyncio.wait_for(reached.wait(), 10)
    await rt.assistant.release(conversation_id)  # the manager's /release, handled meanwhile
    go.set()
    await turn

    released = await rt.conversations.get(conversation_id)
    assert released is not None and released.human_mode_until is None and released.handoff_reason is None


async def test_a_release_saved_after_a_turn_keeps_what_the_turn_learned(runtime: Runtime) -> None:
    """The other order: a release (a repeated one from the admin API) loads the conversation, a turn
    stores the grade the client picked, then the release saves. The grade must survive."""
    rt = runtime
    assert rt.assistant is not None
    chat = Chat(rt, user_id="802")
    conversation_id = (await chat.send(choice="handoff")).conversation_id
    assert conversation_id is not None
    await rt.assistant.release(conversation_id)

    store = rt.assistant.store
    save = store.save
    loaded, go = asyncio.Event(), asyncio.Event()

    async def held_save(state: Any) -> None:
        loaded.set()
        await go.wait()
        await save(state)

    store.save = held_save  # type: ignore[method-assign]
    release = asyncio.create_task(rt.assistant.release(conversation_id))
    await asyncio.wait_for(loaded.wait(), 10)
    await chat.send(choice="grade:9")
    go.set()
    await release

    stored = await rt.conversations.get(conversation_id)
    assert stored is not None and stored.profile.get("grade") == 9 and stored.human_mode_until is None
