"""The assistant: ``handle(inbound) -> Reply`` for every adapter (Telegram, the HTTP API, the Mini App).

A turn: load the conversation, store the user's message, route it (reserved payloads and contacts are
handled deterministically; free text goes to the model, or to the offline policy when no model is
configured, the daily token budget is spent or the model failed after retries), check the reply
(guardrails), store it and save the conversation.

Reserved quick-reply payloads (each ≤ 64 bytes, Telegram's callback_data limit):
    grade:<1-11>                               funnel: the pupil's grade
    goal:<ege|oge|olympiad|base|intensive|camp|any>
    subject:<math|physics|informatics|russian|any>
    format:<online|offline|hybrid|any>
    program:<id>                               "sign me up" for a program card: starts contact capture
    contact:start                              leave a contact (consent first, then the phone)
    consent:yes | consent:no                   the user's answer to the personal-data consent request
    handoff                                    call a manager (human mode)
    restart                                    start the funnel again
    say:<text>                                 a ready-made user phrase; handled as if typed

Ordering: two messages of one user never run at the same time (a lock per conversation in this process,
and the store's lock per user across processes: adapters/storage/turn_locks.py), so a retried message
(same idempotency key) waits for its first attempt's turn, wherever that runs, and gets its stored reply.
Across processes, the order of a chat's Telegram updates is the update queue's job (one worker claims a
chat's updates in order); the database's unique idempotency keys keep a reprocessed update from being
stored twice.
"""

from __future__ import annotations

import asyncio
import re
import logging
import weakref
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime
from typing import Any, Protocol

from agent.catalog import Catalog, school_today
from agent.channel_texts import for_channel, handoff_text, human_mode_notice
from agent.contact import CONSENT_NO, CONSENT_YES, CONTACT_START, HANDOFF, ContactFlow
from agent.decide import Decision, Route, Situation, decide
from agent.errors import ModelUnavailable, NotFound
from agent.funnel import STEPS, apply_choice, apply_hints, choice_label, skip_step
from agent.guardrails import TRUNCATION_NOTE, ReplyCheck, cap_input, check_reply, quotes_prompt
from agent.intents import HandoffLookup, Intent, IntentTable, load_intents
from agent.leads import LeadService
from agent.link_policy import LinkPolicy, telegram_names_in
from agent.model_turn import ModelTurn, valid_payload
from agent.offline import PROGRAMS, RESTART, OfflinePolicy
from agent.personal_data import mask_personal_data
from agent.prompting import TRANSCRIPT_MAX_MESSAGES
from agent.replies import (
    CALL_MANAGER,
    FORGET_NO,
    FORGET_YES,
    combine,
    forget_confirmation,
    given_in,
    offer_manager,
    withdrawn_reply,
)
from agent.ports import CRM, HandoffNotice, Knowledge, Notifier
from agent.relay import human_mode_deadline
from agent.rules_guard import RulesCheck
from agent.settings import Settings
from agent.state import ConversationState, NewMessage, Store, TurnStart, UsageRecord
from agent.streaming import mute_live_reply
from agent.toolkit import ToolContext
from agent.turn_meta import write_turn_meta
from agent.types import Action, Channel, Inbound, ProgramCard, QuickReply, Reply, Usage, identity_of
from agent.understanding import Understanding, understand
from agent.withdrawal import ConsentWithdrawal, UserRef, Withdrawn, withdrawn_text

log = logging.getLogger(__name__)

FUNNEL_PAYLOADS = ("grade:", "goal:", "subject:", "format:")
HUMAN_QUIET = "Пока менеджер ведёт разговор, я помолчу."
FALLBACK_TEXT = "Извините, я не понял. Выберите, пожалуйста, вариант кнопкой или напишите вопрос."


class KnowledgeBase(Knowledge, Protocol):
    def known_amounts(self, brand: str) -> set[int]: ...



def _card_text(card: ProgramCard) -> str:
    return "\n".join([card.title, card.price_text, card.next_start_text, card.why_match, *card.usp])


def _utcnow() -> datetime:
    return datetime.now(UTC)


# A reply that tells the user how to call a manager (the command, or the button by its name).
CHECKS_REMEMBERED = 256  # texts whose guardrail result is kept (a few per conversation in flight)
_POINTS_TO_MANAGER = re.compile(r"/manager\b|«Позвать менеджера»")


def _telegram_id(inbound: Inbound) -> int | None:
    """The Telegram user id a consent is recorded with (None outside Telegram)."""
    return int(inbound.user_id) if identity_of(inbound.channel).value == "telegram" and inbound.user_id.isdigit() else None


def _describe(inbound: Inbound, text: str | None) -> str:
    """The user's message as it is stored in the transcript (the phone itself lives in the profile)."""
    if inbound.contact is not None:
        return "[пользователь отправил свой номер телефона]"
    if inbound.choice:
        step = inbound.choice.partition(":")[0]
        if inbound.choice.startswith("say:"):
            return inbound.choice[4:]
        return f"Выбрано: {choice_label(inbound.choice)}" if step in STEPS else f"[кнопка {inbound.choice}]"
    if text:
        return text
    return "/start" if inbound.start else "[пустое сообщение]"


class AssistantService:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        catalog: Catalog,
        knowledge: KnowledgeBase,
        lead_service: LeadService,
        notifier: Notifier,
        model: ModelTurn | None = None,
        crm: CRM | None = None,
        withdrawal: ConsentWithdrawal | None = None,
        intents: IntentTable | None = None,
        clock: Callable[[], datetime] = _utcnow,
        today: Callable[[], date] = school_today,
        on_model_failure: Callable[[str], None] = lambda kind: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.knowledge = knowledge
        self.lead_service = lead_service
        self.notifier = notifier
        self.model = model
        self.crm = crm
        self.withdrawal = withdrawal  # every channel's withdrawal goes through withdraw_consent()
        self.intents = intents or load_intents(settings.project_path("prompts") / "intents.yaml")
        self.clock = clock
        self.today = today
        self.on_model_failure = on_model_failure  # e.g. a metrics counter by kind
        # The bot's own username (the Telegram adapter adds it after getMe): replies may link to it.
        self.own_telegram_names: set[str] = set()
        self.offline = OfflinePolicy(catalog, knowledge, self.intents)
        self._amounts: dict[str, frozenset[int]] = {}
        self._checks: OrderedDict[tuple[str, str, frozenset[str]], tuple[RulesCheck, ReplyCheck]] = OrderedDict()
        self._contact_flows: dict[str, ContactFlow] = {}
        self._locks: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = weakref.WeakValueDictionary()

    # ---------------------------------------------------------------- the Assistant protocol

    async def handle(self, inbound: Inbound) -> Reply:
        brand = self._brand(inbound)
        text, truncated = cap_input(inbound.text.strip()) if inbound.text and inbound.text.strip() else (None, False)
        if truncated:
            mute_live_reply()  # the reply starts with a note the model's live text would not show
        message = self._message(inbound, _describe(inbound, text), meta={"choice": inbound.choice} if inbound.choice else None)
        async with self._lock(inbound, brand), self._exclusive(inbound, brand):
            opened = await self._open(inbound, brand, message, typed=bool(text) and not inbound.choice)
            if opened.state is None:
                return Reply.model_validate(opened.stored_reply)
            state, usage = opened.state, []
            try:
                now = self.clock()
                if self._in_human_mode(state, now) and not self._asks_to_forget(inbound, text, state.brand):
                    reply = self._human_mode_reply(state, inbound.channel)
                else:
                    reply = await self._route(inbound, state, text, now, usage)
                    if truncated:
                        reply.text = f"{TRUNCATION_NOTE}\n\n{reply.text}"
                    reply = self._checked(reply, brand, inbound.channel)
            except Exception:
                await self.store.record_usage(usage)  # the turn failed, but its tokens were spent
                raise
            return await self._finish(inbound, state, reply, usage)

    async def handoff(self, inbound: Inbound, reason: str) -> Reply:
        brand = self._brand(inbound)
        async with self._lock(inbound, brand), self._exclusive(inbound, brand):
            opened = await self._open(inbound, brand, self._message(inbound, "[пользователь попросил менеджера]"))
            if opened.state is None:
                return Reply.model_validate(opened.stored_reply)
            reply = await self._enter_human_mode(opened.state, inbound, reason, self.clock())
            return await self._finish(inbound, opened.state, reply, [])

    async def remember_lead(
        self, *, identity: str, external_id: str, brand: str, lead_id: int, phone: str, name: str | None,
        profile: dict[str, Any], program_ids: list[str],
    ) -> None:
        """A lead made outside the chat (the Mini App form) for this user: the chat then knows it — it
        neither asks for the phone again nor makes a second lead, and stops qualifying."""
        async with self._lock_for(identity, external_id, brand):
            state = await self.store.load(identity, external_id, brand)
            state.flow["lead_id"] = lead_id
            if state.flow.get("awaiting") in ("consent", "phone"):
                state.flow.pop("awaiting")
            state.profile.phone = phone
            state.profile.phone_verified = True  # the Mini App form's own lead, with consent
            state.profile.name = state.profile.name or name
            for step, value in profile.items():
                if step in STEPS and getattr(state.profile, step) is None:
                    setattr(state.profile, step, value)
            # «Запишите на пробное» in the chat is then the same request: the lead is found, not repeated.
            state.profile.program_ids = state.profile.program_ids or list(program_ids)
            await self.store.save(state)

    async def release(self, conversation_id: int) -> None:
        state = await self.store.load_by_id(conversation_id)
        if state is None:
            raise NotFound(f"conversation {conversation_id}")
        state.human_mode_until = None
        state.handoff_reason = None
        state.handoff_notice_sent = False
        await self.store.save(state)

    # ---------------------------------------------------------------- routing

    async def _route(
        self, inbound: Inbound, state: ConversationState, text: str | None, now: datetime, usage: list[UsageRecord]
    ) -> Reply:
        """Buttons and shared contacts are deterministic; typed text is understood whole and routed by the
        decision table (agent/decide.py)."""
        contact = self._contact_flow(state.brand)
        channel, key = inbound.channel.value, inbound.idempotency_key
        choice = (inbound.choice or "").strip()
        if choice.startswith("say:"):
            text, choice = choice[4:] or None, ""
        if choice == HANDOFF:
            return await self._enter_human_mode(state, inbound, "Пользователь попросил менеджера", now)
        if choice in (CONSENT_YES, CONSENT_NO):
            return await contact.on_consent(
                state, choice == CONSENT_YES, channel=channel, telegram_id=_telegram_id(inbound), now=now, key=key
            )
        if choice in (FORGET_YES, FORGET_NO):
            return await self._forget(inbound, state, confirmed=choice == FORGET_YES)
        if choice == CONTACT_START:
            return await contact.start(state, channel=channel, now=now, key=key)
        if choice.startswith("program:"):
            program_id = choice.partition(":")[2]
            if self.catalog.program(state.brand, program_id) is not None:
                state.profile.program_ids = [program_id]
            return await contact.start(state, channel=channel, now=now, key=key)
        if choice == RESTART:
            for step in STEPS:
                setattr(state.profile, step, None)
            state.flow.clear() if not state.flow.get("lead_id") else state.flow.pop("answered", None)
            return self.offline.advance(state, today=self.today())
        if choice == PROGRAMS:
            return self.offline.advance(state, today=self.today())
        if inbound.contact is not None:
            name = inbound.contact.first_name or inbound.first_name
            return await contact.on_phone(
                state, inbound.contact.phone, name=name, channel=channel, now=now, key=key, verified=inbound.contact.verified
            )
        if choice and not apply_choice(state, choice):
            follow = self.offline.advance(state, today=self.today())
            return Reply(text=f"{FALLBACK_TEXT}\n\n{follow.text}", quick_replies=follow.quick_replies)
        if inbound.start and not text and not choice:
            return self.offline.greet(state, brand_name=contact.brand_name, today=self.today())
        if not text:
            if not choice or not await self._model_allowed(state):
                return self.offline.advance(state, today=self.today())
            return await self._answer(inbound, state, None, None, contact, now, usage)
        expecting = bool(state.flow.get("awaiting") or state.flow.get("lead_id"))
        message = understand(
            text, self._intents(state.brand), expecting_contact=expecting, handoff_topic=self._handoff_topic(state.brand)
        )
        return await self._decided(inbound, state, message, contact, now, usage)

    async def _decided(
        self,
        inbound: Inbound,
        state: ConversationState,
        message: Understanding,
        contact: ContactFlow,
        now: datetime,
        usage: list[UsageRecord],
    ) -> Reply:
        """One row of the decision table, plus the answer to the rest of the message where it asks for one."""
        consent_pending = state.flow.get("awaiting") == "consent"
        decision = decide(message, Situation(
            lead_id=state.flow.get("lead_id"), phone=state.profile.phone, funnel_open=self.offline.qualifying(state),
            consent_pending=consent_pending,
        ))
        if consent_pending and decision.route is not Route.consent:
            # The prompt was left unanswered: a later «да» to another question is not consent (the
            # buttons of the prompt still work; a new contact step asks again).
            state.flow.pop("awaiting", None)
        if decision.route is Route.forget:
            return self._forget_confirmation()
        if decision.route is Route.urgent:
            assert message.urgent is not None
            text = f"{' '.join(message.urgent.reply.split())} {HUMAN_QUIET}"
            return await self._enter_human_mode(state, inbound, f"Срочная тема: {message.urgent.id}", now, text=text)
        if decision.route is Route.person:
            reason = f"Пользователь попросил менеджера: {mask_personal_data(message.text)[:300]}"
            return await self._enter_human_mode(state, inbound, reason, now)
        reply = await self._acted(inbound, state, message, decision, contact, now, usage)
        # A topic only a manager can give the details of (Лобня, individual lessons): the answer stays,
        # the school's words about it and a manager button are added; the bot is not silenced.
        return offer_manager(reply, message.topic) if message.topic is not None else reply

    async def _acted(
        self,
        inbound: Inbound,
        state: ConversationState,
        message: Understanding,
        decision: Decision,
        contact: ContactFlow,
        now: datetime,
        usage: list[UsageRecord],
    ) -> Reply:
        channel, key = inbound.channel.value, inbound.idempotency_key
        if decision.route is Route.enrol and self.model is not None and await self._model_allowed(state):
            decision = Decision(Route.answer)  # the model shows the programs and asks for the contact itself
        if message.name:
            contact.remember_name(state, message.name)
        if decision.route is Route.consent:
            granted = message.has(Intent.consent_yes)
            done = await contact.on_consent(
                state, granted, channel=channel, telegram_id=_telegram_id(inbound), now=now, key=key
            )
            if granted and message.has_contact:  # «да, согласна, 8 916 …»: the phone completes the lead
                done = await contact.on_message_contact(state, message, channel=channel, now=now, key=key)
        elif decision.route is Route.note:
            done = await contact.add_to_lead(state, message)
        elif decision.route is Route.name:
            done = contact.name_noted(state, channel)
        elif decision.route is Route.contact:
            apply_hints(state, message.hints, overwrite=False)
            done = await contact.on_message_contact(state, message, channel=channel, now=now, key=key)
        elif decision.route is Route.enrol:
            apply_hints(state, message.hints, overwrite=False)
            done = await contact.start(state, channel=channel, now=now, key=key)
        elif decision.route is Route.skip:
            step = self.offline.open_step(state)
            if step is not None:
                skip_step(state, step)
            return self.offline.advance(state, today=self.today())
        else:
            return await self._answer(inbound, state, message.text, message, contact, now, usage)
        if not decision.answer_rest:
            return done
        answer = await self._answer(inbound, state, message.question, message, contact, now, usage, follow_up=False)
        return combine(answer, done)

    async def _answer(
        self,
        inbound: Inbound,
        state: ConversationState,
        text: str | None,
        message: Understanding | None,
        contact: ContactFlow,
        now: datetime,
        usage: list[UsageRecord],
        *,
        follow_up: bool = True,
    ) -> Reply:
        """The model's answer (the offline policy's when there is no model, the budget is spent or the
        model fails). ``follow_up=False``: only the question, the caller's reply carries the next step."""
        if self.model is not None and await self._model_allowed(state):
            model = self.model

            async def record_usage(purpose: str, spent: Usage) -> None:
                usage.append(UsageRecord(conversation_id=state.conversation_id, user_id=state.user_id,
                                         model=model.llm.model, purpose=purpose, usage=spent))

            ctx = ToolContext(
                settings=self.settings,
                brand=state.brand,
                channel=inbound.channel.value,
                today=self.today(),
                now=now,
                conversation=state,
                catalog=self.catalog,
                knowledge=self.knowledge,
                leads=self.lead_service,
                crm=self.crm,
                llm=model.llm,
                idempotency_key=inbound.idempotency_key,
                record_usage=record_usage,
            )
            try:
                reply, answer = await model.run(
                    ctx,
                    brand=self.catalog.brand(state.brand).brand,
                    rules_prompt=self.catalog.guard(state.brand).prompt_section,
                    consent_given=await self._consent_given(state),
                    given=given_in(message),
                    check=lambda draft: self._live_check(draft, state.brand, inbound.channel),
                )
            except ModelUnavailable as error:
                log.warning("model turn failed, answering offline: %s", error)
                self.on_model_failure("unavailable")
            except Exception:
                # A bug in a tool or in our loop: logged loudly, but the user still gets an answer.
                log.exception("model turn crashed, answering offline")
                self.on_model_failure("crash")
            else:
                if ctx.lead_id:
                    state.flow["lead_id"] = ctx.lead_id
                if not self.offline.qualifying(state, message):  # the same buttons rule as offline
                    reply.quick_replies = [q for q in reply.quick_replies if not q.payload.startswith(FUNNEL_PAYLOADS)]
                if (answer.ask_contact or ctx.consent_needed) and follow_up:
                    follow = await contact.start(state, channel=inbound.channel.value, now=now, key=inbound.idempotency_key)
                    reply.text = f"{reply.text}\n\n{follow.text}".strip()
                    reply.quick_replies = follow.quick_replies or reply.quick_replies
                    reply.actions = [*reply.actions, *follow.actions]
                    reply.lead_id = reply.lead_id or follow.lead_id
                if ctx.handoff_reason:
                    handoff = await self._enter_human_mode(state, inbound, ctx.handoff_reason, now)
                    reply.text = f"{reply.text}\n\n{handoff.text}".strip()
                    reply.actions = [*reply.actions, Action.handoff]
                    reply.quick_replies = []
                return reply
        brand_name = self.catalog.brand(state.brand).brand.name
        if not follow_up and message is not None:
            return await self.offline.answer(state, message, today=self.today(), brand_name=brand_name, follow_up=False)
        return await self.offline.respond(state, message, today=self.today(), brand_name=brand_name)

    # ---------------------------------------------------------------- human mode

    def _in_human_mode(self, state: ConversationState, now: datetime) -> bool:
        if state.human_mode_until is None:
            return False
        if state.human_mode_until > now:
            return True
        state.human_mode_until = None  # no manager wrote for HANDOFF_IDLE_HOURS: the bot answers again
        state.handoff_reason = None
        return False

    def _asks_to_forget(self, inbound: Inbound, text: str | None, brand: str) -> bool:
        """A withdrawal is heard while a manager has the conversation too: it is the client's right in every
        channel, and outside Telegram there is no /forget command to fall back on."""
        if (inbound.choice or "").strip() in (FORGET_YES, FORGET_NO):
            return True
        return text is not None and understand(text, self._intents(brand)).has(Intent.forget)

    def _human_mode_reply(self, state: ConversationState, channel: Channel) -> Reply:
        if state.handoff_notice_sent:
            return Reply(text="", silent=True, actions=[Action.handoff], human_mode=True)
        state.handoff_notice_sent = True
        return Reply(text=human_mode_notice(channel), silent=False, actions=[Action.handoff], human_mode=True)

    async def _enter_human_mode(
        self, state: ConversationState, inbound: Inbound, reason: str, now: datetime, *, text: str | None = None
    ) -> Reply:
        """``text``: what the user reads (an urgent topic's own words); by default where the manager answers."""
        if self._in_human_mode(state, now):
            return self._human_mode_reply(state, inbound.channel)
        state.human_mode_until = human_mode_deadline(now, self.settings.handoff_idle_hours)
        state.handoff_reason = reason[:500]
        state.handoff_notice_sent = True  # the reply below tells the user the bot goes quiet
        # Read now, not the turn's preloaded value: a withdrawal during the model's answer must keep the
        # phone out of the staff chat.
        consent = await self.lead_service.has_consent(state.user_id)
        display = state.first_name or (f"@{state.username}" if state.username else f"{state.identity} user {state.external_id}")
        notice = HandoffNotice(
            conversation_id=state.conversation_id,
            brand=state.brand,
            channel=inbound.channel.value,
            user_display=display,
            reason=state.handoff_reason,
            profile=state.profile.model_dump(include={"grade", "goal", "subject", "format", "program_ids"}, exclude_none=True),
            contact=state.profile.phone if consent else None,
        )
        try:
            await self.notifier.notify_handoff(notice)
        except Exception:  # a staff-chat hiccup must not cost the user their reply
            log.exception("handoff notification failed for conversation %s", state.conversation_id)
        hours = self.catalog.brand(state.brand).brand.working_hours
        return Reply(text=text or handoff_text(inbound.channel, hours), actions=[Action.handoff])

    # ---------------------------------------------------------------- withdrawal

    def _forget_confirmation(self) -> Reply:
        return forget_confirmation()

    async def withdraw_consent(self, user: UserRef, channel: Channel | str, *, brand: str | None = None) -> Withdrawn:
        """The one consent withdrawal every channel calls: Telegram's /forget and its button, «удалите мои
        данные» in the bot, the API and the Mini App chat, and the admin API (agent/withdrawal.py)."""
        if self.withdrawal is None:
            raise RuntimeError("consent withdrawal is not wired")
        name = channel.value if isinstance(channel, Channel) else channel
        erasure = await self.withdrawal.withdraw(user, channel=name, now=self.clock())
        brand_id = brand if brand in self.catalog.brand_ids() else self.settings.brand_default
        contact = self.catalog.brand(brand_id).brand.manager_contact if brand_id in self.catalog.brand_ids() else ""
        return Withdrawn(erasure=erasure, text=withdrawn_text(erasure, manager_contact=contact))

    async def _forget(self, inbound: Inbound, state: ConversationState, *, confirmed: bool) -> Reply:
        """The confirmation buttons of a typed «удалите мои данные», in any channel."""
        if not confirmed or self.withdrawal is None:
            return withdrawn_reply(available=self.withdrawal is not None, confirmed=confirmed)
        user = UserRef(identity=identity_of(inbound.channel).value, external_id=inbound.user_id)
        withdrawn = await self.withdraw_consent(user, inbound.channel, brand=state.brand)
        state.flow["erased"] = True  # nothing of this turn is stored (see _finish)
        return Reply(text=withdrawn.text)

    def _intents(self, brand: str) -> IntentTable:
        return self.intents

    def _handoff_topic(self, brand: str) -> HandoffLookup | None:
        """The brand's own handoff topics (catalog/<brand>.rules.yaml ``handoff_topics``), read before the
        default urgent topics of prompts/intents.yaml."""
        guard = self.catalog.guard(brand)
        return guard.handoff if guard.rules.handoff_topics else None

    # ---------------------------------------------------------------- helpers

    def _contact_flow(self, brand_id: str) -> ContactFlow:
        """One contact flow per brand (its texts name the brand), built on first use, not per turn."""
        flow = self._contact_flows.get(brand_id)
        if flow is None:
            brand = self.catalog.brand(brand_id).brand
            flow = ContactFlow(self.lead_service, brand.name, brand.domain, brand.manager_contact, brand.working_hours)
            self._contact_flows[brand_id] = flow
        return flow

    def _brand(self, inbound: Inbound) -> str:
        return self.catalog.require_brand((inbound.brand or self.settings.brand_default).strip())

    def _lock(self, inbound: Inbound, brand: str) -> asyncio.Lock:
        return self._lock_for(identity_of(inbound.channel).value, inbound.user_id, brand)

    def _exclusive(self, inbound: Inbound, brand: str) -> AbstractAsyncContextManager[None]:
        """The same user's turns in other processes (the store's lock; this process's is ``_lock``):
        taken after this process's own lock, so a process holds it once per user at a time."""
        return self.store.exclusive(identity_of(inbound.channel).value, inbound.user_id, brand)

    def _lock_for(self, identity: str, external_id: str, brand: str) -> asyncio.Lock:
        key = (identity, external_id, brand)
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    @staticmethod
    def _message(inbound: Inbound, content: str, meta: dict[str, Any] | None = None) -> NewMessage:
        return NewMessage(
            content=content, channel=inbound.channel.value, meta=meta, idempotency_key=inbound.idempotency_key
        )

    async def _open(self, inbound: Inbound, brand: str, message: NewMessage, *, typed: bool = False) -> TurnStart:
        """The stored reply of a reprocessed update, or the conversation with the user's message stored.
        A ``typed`` message (free text, which the model usually answers) has the model's transcript and
        the consent preloaded in the same transaction: on PostgreSQL each transaction of a turn costs
        round trips (check-out ping, BEGIN, COMMIT) that many conversations at once queue behind."""
        return await self.store.open_turn(
            identity_of(inbound.channel).value,
            inbound.user_id,
            brand,
            message,
            first_name=inbound.first_name,
            username=inbound.username,
            source=inbound.source,
            context_messages=TRANSCRIPT_MAX_MESSAGES if typed and self.model is not None else 0,
        )

    async def _consent_given(self, state: ConversationState) -> bool:
        consent = state.preloaded_consent
        return consent if consent is not None else await self.lead_service.has_consent(state.user_id)

    async def _model_allowed(self, state: ConversationState) -> bool:
        """False when a daily token budget (per user or for everyone, UTC day) is spent."""
        day_start = self.clock().replace(hour=0, minute=0, second=0, microsecond=0)
        by_user, by_everyone = await self.store.tokens_today(day_start, user_id=state.user_id)
        return (by_user < self.settings.openai_daily_token_budget_per_user
                and by_everyone < self.settings.openai_daily_token_budget_total)

    def _known_amounts(self, brand: str) -> frozenset[int]:
        """The ₽ amounts the brand's catalog and documents state, computed once per brand (both are
        loaded at start-up and never change while the service runs)."""
        known = self._amounts.get(brand)
        if known is None:
            withdrawn = {item.amount for item in self.catalog.rules(brand).withdrawn_amounts}
            known = frozenset((self.catalog.known_amounts(brand) | self.knowledge.known_amounts(brand)) - withdrawn)
            self._amounts[brand] = known
        return known

    def _check_text(self, text: str, brand: str) -> ReplyCheck:
        """The reply guardrails, for the final text and for every sentence shown while streaming: the
        school's rules first (a forbidden term replaces the text, a promise or a computed sum is cut),
        then the generic checks (unknown ₽ amounts, foreign links, prompt leaks)."""
        return self._guarded(text, brand)[1]

    def _guarded(self, text: str, brand: str) -> tuple[RulesCheck, ReplyCheck]:
        """What the brand rules made of the text, and the text after every check.

        Remembered for the last few texts: a turn checks the same text more than once (the final
        reply twice, and a streamed answer's last sentence is that same whole text), and the checks
        are the largest part of what streaming adds to a turn's CPU (bench/live_replies.py). The
        result depends only on the text, the brand and the bot's own names."""
        key = (text, brand, frozenset(self.own_telegram_names))
        found = self._checks.get(key)
        if found is not None:
            self._checks.move_to_end(key)
            return found
        ruled = self.catalog.guard(brand).check(text)
        secret = self.model.prompts.secret_lines if self.model else []
        links = self._link_policy(brand)
        checked = check_reply(
            ruled.text, known_amounts=self._known_amounts(brand), brand_domain=links.domain, secret_lines=secret,
            telegram_names=links.telegram_names,
        )
        self._checks[key] = (ruled, checked)
        if len(self._checks) > CHECKS_REMEMBERED:
            self._checks.popitem(last=False)
        return ruled, checked

    def _link_policy(self, brand: str) -> LinkPolicy:
        info = self.catalog.brand(brand).brand
        return LinkPolicy.of(info.domain, telegram_names_in(info.manager_contact) | self.own_telegram_names)

    def _live_check(self, draft: str, brand: str, channel: Channel) -> str:
        """What a sentence shown while the answer streams must pass: the reply guardrails leave it
        unchanged, and it quotes no stretch of the prompt (a quote the whole-reply check would only
        catch once more of it is written). A changed result stops the live preview."""
        if self.model is not None and quotes_prompt(draft, self.model.prompts.quote_heads):
            return ""
        return for_channel(self._check_text(draft, brand).text, channel)  # as the final text is worded

    def _checked(self, reply: Reply, brand: str, channel: Channel) -> Reply:
        guard = self.catalog.guard(brand)
        ruled, checked = self._guarded(reply.text, brand)
        if ruled.hits:
            log.warning("brand rules: %s", ", ".join(f"{hit.kind}:{hit.rule}" for hit in ruled.hits))
        replaced = ruled.replaced
        if replaced:  # a forbidden term: the rule's text, no cards, a manager offered
            reply.cards = []
        # …and a reply telling the user to press «Позвать менеджера» («как с вами связаться?») shows it.
        if (replaced or _POINTS_TO_MANAGER.search(reply.text)) and not reply.human_mode and not any(
            button.payload == HANDOFF for button in reply.quick_replies
        ):
            reply.quick_replies = [*reply.quick_replies, QuickReply(label=CALL_MANAGER, payload=HANDOFF)]
        if checked.removed_amounts or checked.removed_links or checked.leaked:
            log.warning(
                "reply guardrails: amounts=%s links=%d leaked=%s",
                checked.removed_amounts, len(checked.removed_links), checked.leaked,
            )
        reply.text = for_channel(checked.text or FALLBACK_TEXT, channel)
        links = self._link_policy(brand)
        buttons: dict[str, QuickReply] = {}
        for button in reply.quick_replies:
            label = f"{button.label} {button.payload}"
            if valid_payload(button.payload) and not guard.violations(label) and links.allows(label):
                buttons.setdefault(button.payload, button)
        reply.quick_replies = list(buttons.values())
        reply.cards = [
            card for card in reply.cards
            if not guard.violations(_card_text(card)) and links.allows(_card_text(card)) and links.allows(card.url)
        ]
        return reply

    async def _finish(
        self, inbound: Inbound, state: ConversationState, reply: Reply, usage: list[UsageRecord]
    ) -> Reply:
        if state.flow.get("erased"):
            return reply  # the withdrawal erased the conversation: nothing of this turn is stored
        reply.conversation_id = state.conversation_id
        meta = write_turn_meta(reply, reply.tool_calls)
        await self.store.finish_turn(state, self._message(inbound, reply.text, meta), usage)
        return reply
