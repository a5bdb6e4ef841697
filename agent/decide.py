"""The decision table: what a typed message makes the assistant do, in one ordered list.

Each row is a condition on the understood message (agent/understanding.py) and the conversation; the
first row that holds decides the route. A route may also ask for the rest of the message to be
answered in the same reply (a phone and a question together), so nothing the user wrote is dropped.

    1. withdrawal («удалите мои данные», /forget)       -> FORGET   (confirmation, then the one method)
    2. an urgent topic (refund demand, complaint, …)    -> URGENT   (handoff with empathy, nothing else)
    3. a request for a person (/manager, «оператор»)    -> PERSON   (handoff)
       «да, согласен» / «нет» while consent is asked      -> CONSENT  (as the buttons) + answer the rest
    4. a lead exists and a new phone or a note arrives  -> NOTE     (added to the lead, never a 2nd lead)
    5. a phone or an e-mail                             -> CONTACT  (consent first) + answer the rest
       only a name («Иванова Ольга» when a contact is expected) -> NOTE (on the lead) or NAME (kept)
    6. «запишите на пробное», «хочу записаться»         -> ENROL    (contact flow) + answer the rest
    7. «без разницы» while a funnel step is open        -> SKIP     (step answered with "any")
    8. anything else                                     -> ANSWER   (the model, or the offline policy)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent.intents import Intent
from agent.understanding import Understanding


class Route(StrEnum):
    forget = "forget"
    urgent = "urgent"
    person = "person"
    consent = "consent"
    note = "note"
    contact = "contact"
    name = "name"
    enrol = "enrol"
    skip = "skip"
    answer = "answer"


@dataclass(frozen=True)
class Decision:
    route: Route
    answer_rest: bool = False  # also answer the question left in the message
    store_contact: bool = True  # keep the name, phone and funnel hints (never on urgent or forget)


@dataclass(frozen=True)
class Situation:
    """What the table needs to know about the conversation."""

    lead_id: int | None
    phone: str | None  # the stored phone
    funnel_open: bool  # a funnel question is waiting for an answer
    consent_pending: bool = False  # the last reply asked for consent to the processing of personal data


def decide(message: Understanding, situation: Situation) -> Decision:
    if message.has(Intent.forget):
        return Decision(Route.forget, store_contact=False)
    if message.urgent is not None:
        return Decision(Route.urgent, store_contact=False)
    if message.has(Intent.person) and not message.has_contact:
        return Decision(Route.person)
    rest = message.asks and not message.has(Intent.enrol)
    if situation.consent_pending and (message.has(Intent.consent_yes) or message.has(Intent.consent_no)):
        return Decision(Route.consent, answer_rest=rest)
    if situation.lead_id is not None and (
        (message.phones and message.phones[0] != situation.phone) or len(message.phones) > 1 or message.emails or message.note
    ):
        return Decision(Route.note, answer_rest=rest)
    if message.phones or message.emails or message.bad_phone:
        return Decision(Route.contact, answer_rest=rest)
    if message.name and not message.question:
        return Decision(Route.note if situation.lead_id is not None else Route.name)
    if message.has(Intent.enrol) or (message.has(Intent.person) and message.has_contact):
        return Decision(Route.enrol, answer_rest=rest)
    if message.has(Intent.skip) and situation.funnel_open:
        return Decision(Route.skip)
    return Decision(Route.answer)
