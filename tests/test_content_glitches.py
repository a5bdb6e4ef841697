"""Content glitches a parent would notice: the price line's start wording, the online platform question."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.runtime import Runtime
from agent.types import Action
from tests.assistant_helpers import Chat, assistant_runtime


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await assistant_runtime(tmp_path)
    yield runtime
    await runtime.close()


async def test_the_price_line_reads_well_for_a_running_year(rt: Runtime) -> None:
    reply = await Chat(rt, user_id="901").send(text="Сколько стоит ЕГЭ по физике онлайн?")
    assert "₽" in reply.text and "можно присоединиться" in reply.text, reply.text
    assert "старт учебный" not in reply.text.lower() and "старт старт" not in reply.text.lower()


@pytest.mark.parametrize("text", ["Занятия проходят в МТС Линк?", "на какой платформе онлайн занятия?", "Уроки в зуме?"])
async def test_the_platform_question_names_the_current_platform(rt: Runtime, text: str) -> None:
    reply = await Chat(rt, user_id="902").send(text=text)
    assert "SohoLMS" in reply.text and "МТС" not in reply.text and Action.handoff not in reply.actions, reply.text
