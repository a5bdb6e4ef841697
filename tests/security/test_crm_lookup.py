"""crm_lookup only for the user's own, verified phone (issue 20, finding 13): a number typed in a message
may be someone else's, and only the prompt stood between the model and that person's CRM record."""

from __future__ import annotations

import json
from typing import Any

import pytest
import respx

from adapters.wiring import Runtime
from agent.types import SharedContact
from tests import openai_fakes as fake
from tests.assistant_helpers import Chat



def _output(route: Any, call_id: str) -> str:
    body = fake.sent(route, -1)
    return next(i["output"] for i in body["input"] if i.get("type") == "function_call_output" and i["call_id"] == call_id)


async def test_a_typed_third_party_number_is_never_looked_up(rt: Runtime, api: respx.MockRouter) -> None:
    route = api.post("/responses").mock(
        side_effect=[
            fake.response(fake.function_call("crm_lookup", {}, "k1")),
            fake.response(fake.answer("К сожалению, я могу проверить только ваш собственный номер.")),
        ]
    )
    reply = await Chat(rt).send(text="Проверьте, учится ли у вас соседка, её номер +7 916 555-44-33")
    assert rt.crm.lookups == []  # type: ignore[union-attr]
    assert "only the user's own phone" in _output(route, "k1")
    assert "9165554433" not in reply.text


async def test_the_contact_flow_confirms_a_typed_own_number(rt: Runtime, api: respx.MockRouter) -> None:
    """A phone typed for a callback becomes the user's own once the lead is left for it with consent."""
    chat = Chat(rt)
    api.post("/responses").mock(return_value=fake.response(fake.answer("Спасибо!")))
    await chat.send(text="Перезвоните мне, пожалуйста: 8 916 555-44-33")
    done = await chat.send(choice="consent:yes")
    assert done.lead_id is not None
    route = api.post("/responses").mock(
        side_effect=[
            fake.response(fake.function_call("crm_lookup", {}, "k2")),
            fake.response(fake.answer("Вы уже занимались у нас.")),
        ]
    )
    await chat.send(text="Вы меня уже знаете?")
    assert rt.crm.lookups == ["+79165554433"]  # type: ignore[union-attr]
    assert json.loads(_output(route, "k2"))["found"] is True


async def test_a_shared_contact_is_verified_at_once(rt: Runtime, api: respx.MockRouter) -> None:
    chat = Chat(rt)
    api.post("/responses").mock(return_value=fake.response(fake.answer("Спасибо!")))
    await chat.send(contact=SharedContact(phone="+79165554433", verified=True))
    api.post("/responses").mock(
        side_effect=[
            fake.response(fake.function_call("crm_lookup", {}, "k3")),
            fake.response(fake.answer("Вы уже занимались у нас.")),
        ]
    )
    await chat.send(text="Вы меня уже знаете?")
    assert rt.crm.lookups == ["+79165554433"]  # type: ignore[union-attr]
