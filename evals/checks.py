"""What one turn did, and the expectations checked against it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agent.types import Action, Reply
from evals.cases import Exchange, Expect, ToolExpect


class Check(BaseModel):
    turn: int
    name: str
    passed: bool
    detail: str = ""


class ToolCall(BaseModel):
    name: str
    arguments: dict[str, Any]


def tool_calls(exchanges: list[Exchange]) -> list[ToolCall]:
    """The function calls the model made in these exchanges (the service ran each of them)."""
    calls: list[ToolCall] = []
    for exchange in exchanges:
        if exchange.status != 200:
            continue
        for item in exchange.body.get("output") or []:
            if item.get("type") != "function_call":
                continue
            try:
                arguments = json.loads(item.get("arguments") or "{}")
            except ValueError:
                arguments = {}
            calls.append(ToolCall(name=item.get("name", "?"), arguments=arguments if isinstance(arguments, dict) else {}))
    return calls


@dataclass
class Observed:
    reply: Reply
    calls: list[ToolCall] = field(default_factory=list)
    lead_created: bool = False
    handoff: bool = False
    live: list[str] = field(default_factory=list)  # the texts shown while the answer streamed

    @property
    def asked_contact(self) -> bool:
        return Action.ask_contact in self.reply.actions or any(
            q.payload.startswith("consent:") for q in self.reply.quick_replies
        )


def _arg_matches(value: Any, constraint: Any) -> bool:
    if isinstance(constraint, dict) and set(constraint) == {"contains"}:
        return isinstance(value, str) and str(constraint["contains"]).lower() in value.lower()
    if isinstance(constraint, dict) and set(constraint) == {"one_of"}:
        return value in constraint["one_of"]
    return bool(value == constraint)


def _call_matches(call: ToolCall, expected: ToolExpect) -> bool:
    return call.name == expected.name and all(
        _arg_matches(call.arguments.get(name), constraint) for name, constraint in expected.args.items()
    )


def _payload_present(wanted: str, payloads: list[str]) -> bool:
    return any(p.startswith(wanted) for p in payloads) if wanted.endswith(":") else wanted in payloads


class _Checker:
    def __init__(self, turn: int) -> None:
        self.turn = turn
        self.checks: list[Check] = []

    def add(self, name: str, passed: bool, detail: str = "") -> None:
        self.checks.append(Check(turn=self.turn, name=name, passed=passed, detail="" if passed else detail))


def evaluate(turn: int, expect: Expect | None, observed: Observed, *, not_contains: list[str] | None = None) -> list[Check]:
    """Universal checks, then ``expect``. ``not_contains`` adds forbidden phrases (safety holds on every engine)."""
    reply, text = observed.reply, observed.reply.text.lower()
    c = _Checker(turn)
    c.add("answered", reply.silent or bool(reply.text.strip()), "empty reply")
    if observed.live and reply.engine == "model":
        # What was shown live is what the final message starts with: nothing unchecked, nothing taken back.
        stray = next((shown for shown in observed.live if not reply.text.startswith(shown)), None)
        c.add("live text is a prefix of the reply", stray is None, (stray or "")[:160])
    forbidden = list(not_contains or []) + (expect.text_not_contains if expect else [])
    for phrase in dict.fromkeys(forbidden):
        c.add(f"text lacks «{phrase}»", phrase.lower() not in text, reply.text[:160])
    if expect is None:
        return c.checks
    if expect.engine:
        c.add(f"engine {expect.engine}", reply.engine == expect.engine, f"answered by {reply.engine}")
    called = ", ".join(f"{x.name}{json.dumps(x.arguments, ensure_ascii=False)}" for x in observed.calls) or "none"
    for wanted in expect.tools:
        args = json.dumps(wanted.args, ensure_ascii=False) if wanted.args else ""
        c.add(f"tool {wanted.name}{args}", any(_call_matches(x, wanted) for x in observed.calls), f"called: {called}")
    for name in expect.tools_absent:
        c.add(f"no tool {name}", all(x.name != name for x in observed.calls), f"called: {called}")
    if expect.no_tools:
        c.add("no tools", not observed.calls, f"called: {called}")
    for phrase in expect.text_contains:
        c.add(f"text has «{phrase}»", phrase.lower() in text, reply.text[:160])
    if expect.text_contains_any:
        c.add(
            f"text has one of {expect.text_contains_any}",
            any(p.lower() in text for p in expect.text_contains_any),
            reply.text[:160],
        )
    payloads = [q.payload for q in reply.quick_replies]
    for wanted in expect.quick_replies:
        c.add(f"button {wanted}", _payload_present(wanted, payloads), f"buttons: {payloads}")
    card_ids = [card.id for card in reply.cards]
    if expect.cards is not None:
        c.add(f"{expect.cards} cards", len(card_ids) == expect.cards, f"cards: {card_ids}")
    for card_id in expect.card_ids:
        c.add(f"card {card_id}", card_id in card_ids, f"cards: {card_ids}")
    for name, wanted, actual in (
        ("lead created", expect.lead_created, observed.lead_created),
        ("handoff", expect.handoff, observed.handoff),
        ("asks for contact", expect.ask_contact, observed.asked_contact),
        ("silent", expect.silent, reply.silent),
    ):
        if wanted is not None:
            c.add(name if wanted else f"not {name}", actual == wanted, f"{name}: {actual}")
    return c.checks
