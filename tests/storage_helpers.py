"""A stored dialogue written the way the assistant writes one (the turn SQL), for tests that need history."""

from __future__ import annotations

from adapters.storage.stores import SqlStore
from agent.state import ConversationState, NewMessage


async def stored_dialogue(
    store: SqlStore, external_id: str, turns: list[tuple[str, str]], *, first_name: str | None = None,
    username: str | None = None, brand: str = "kmipt",
) -> ConversationState:
    """Each (user message, reply) pair through ``open_turn`` and ``finish_turn``; the last turn's state."""
    state = None
    for number, (said, answered) in enumerate(turns):
        message = NewMessage(content=said, channel="telegram", idempotency_key=f"tg:{external_id}:{number}")
        start = await store.open_turn(
            "telegram", external_id, brand, message, first_name=first_name, username=username
        )
        state = start.state
        assert state is not None
        await store.finish_turn(state, NewMessage(content=answered, channel="telegram"), [])
    assert state is not None
    return state
