"""Contact capture with consent, the same for both engines: consent and the phone are legal facts, so
they are recorded from the user's own buttons and messages, never decided by the model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agent.channel_texts import ask_phone, consent_withdrawal
from agent.errors import ConsentRequired, InvalidInput
from agent.personal_data import mask_phone
from agent.leads import LeadRequest, LeadService
from agent.phones import normalize_phone
from agent.state import ConversationState
from agent.types import Action, Channel, QuickReply, Reply
from agent.understanding import Understanding

CONSENT_YES = "consent:yes"
CONSENT_NO = "consent:no"
CONTACT_START = "contact:start"
HANDOFF = "handoff"

CONSENT_PROMPT = (
    "Чтобы менеджер {brand} связался с вами, мне нужно ваше согласие на обработку персональных данных: "
    "имени, телефона, Telegram id, класса и интересов ребёнка — только для консультации и записи на обучение. "
    "Согласие можно отозвать в любой момент {withdraw}. Полный текст согласия и политика "
    "конфиденциальности — на сайте {domain}."
)
BAD_PHONE = "Кажется, это не похоже на номер телефона. Напишите, пожалуйста, номер в формате +7 999 123-45-67."
NO_CONSENT = (
    "Хорошо, без согласия я не сохраняю контакты. Вы можете связаться со школой сами: {contact}. "
    "А я с радостью продолжу отвечать на вопросы."
)
LEAD_CREATED = (
    "Спасибо! Заявка №{lead_id} передана менеджеру, он свяжется с вами в рабочее время "
    "({hours}). Если появятся вопросы — пишите, я на связи."
)
LEAD_EXISTS = "Ваша заявка №{lead_id} уже у менеджера, он свяжется с вами в рабочее время. Спасибо за терпение!"
NOTE_ADDED = "Спасибо, добавил к вашей заявке №{lead_id}: {what}. Менеджер увидит это."
NOTED_FOR_LEAD = "Спасибо, передам менеджеру вместе с заявкой."
NOTE_PREFIX = "От клиента: "


def note_parts(message: Understanding, known_phone: str | None) -> list[str]:
    """What a message adds for the manager: other phones, e-mails and remarks («перезвоните после 18»)."""
    parts = [f"доп. телефон {phone}" for phone in message.phones if phone != known_phone]
    parts += [f"e-mail {email}" for email in message.emails]
    if message.note:
        parts.append(f"«{message.note}»")
    return parts


def masked_parts(message: Understanding, known_phone: str | None) -> str:
    """The same, as the user may read it back: phones masked, e-mails not repeated."""
    parts = [f"номер {mask_phone(phone)}" for phone in message.phones if phone != known_phone]
    if message.emails:
        parts.append("e-mail")
    if message.note:
        parts.append("ваш комментарий")
    return ", ".join(parts)


def lead_request(
    state: ConversationState,
    *,
    channel: str,
    key: str | None,
    name: str | None = None,
    program_ids: list[str] | None = None,
) -> LeadRequest:
    """A lead from what the conversation knows; the phone is the stored one, never the model's."""
    assert state.profile.phone is not None
    return LeadRequest(
        user_id=state.user_id,
        conversation_id=state.conversation_id,
        brand=state.brand,
        channel=channel,
        phone=state.profile.phone,
        name=name or state.profile.name or state.first_name,
        source=state.source,
        profile=state.profile.model_dump(include={"grade", "goal", "subject", "format"}, exclude_none=True),
        program_ids=program_ids or state.profile.program_ids,
        manager_note=(NOTE_PREFIX + "; ".join(state.flow["notes"])) if state.flow.get("notes") else None,
        idempotency_key=f"{key}:lead" if key else None,
    )


def consent_buttons() -> list[QuickReply]:
    return [
        QuickReply(label="Согласен(на)", payload=CONSENT_YES),
        QuickReply(label="Не согласен(на)", payload=CONSENT_NO),
    ]


@dataclass
class ContactFlow:
    leads: LeadService
    brand_name: str
    brand_domain: str
    manager_contact: str
    working_hours: str  # the catalog's brand.working_hours

    def ask_consent(self, state: ConversationState, channel: str) -> Reply:
        state.flow["awaiting"] = "consent"
        withdraw = consent_withdrawal(Channel(channel))
        text = CONSENT_PROMPT.format(brand=self.brand_name, domain=self.brand_domain, withdraw=withdraw)
        return Reply(text=text, quick_replies=consent_buttons())

    async def start(self, state: ConversationState, *, channel: str, now: datetime, key: str | None) -> Reply:
        if not await self.leads.has_consent(state.user_id):
            return self.ask_consent(state, channel)
        if state.profile.phone:
            return await self.create_lead(state, channel=channel, now=now, key=key)
        state.flow["awaiting"] = "phone"
        return Reply(text=ask_phone(Channel(channel)), actions=[Action.ask_contact])

    async def on_consent(
        self, state: ConversationState, granted: bool, *, channel: str, telegram_id: int | None, now: datetime, key: str | None
    ) -> Reply:
        await self.leads.record_consent(
            user_id=state.user_id, brand=state.brand, granted=granted, channel=channel, telegram_id=telegram_id
        )
        state.consent_recorded(granted)
        state.flow.pop("awaiting", None)
        if not granted:
            return Reply(text=NO_CONSENT.format(contact=self.manager_contact))
        return await self.start(state, channel=channel, now=now, key=key)

    async def on_phone(
        self, state: ConversationState, raw: str, *, name: str | None, channel: str, now: datetime, key: str | None,
        verified: bool = False,
    ) -> Reply:
        try:
            state.profile.phone = normalize_phone(raw)
            state.profile.phone_verified = verified  # a newly typed number is nobody's until the flow confirms it
        except InvalidInput:
            state.flow["awaiting"] = "phone"
            return Reply(text=BAD_PHONE, actions=[Action.ask_contact])
        if name and not state.profile.name:
            state.profile.name = name
        if not await self.leads.has_consent(state.user_id):
            return self.ask_consent(state, channel)
        return await self.create_lead(state, channel=channel, now=now, key=key)

    async def create_lead(self, state: ConversationState, *, channel: str, now: datetime, key: str | None) -> Reply:
        request = lead_request(state, channel=channel, key=key)
        try:
            outcome = await self.leads.create(request, now=now)
        except ConsentRequired:
            return self.ask_consent(state, channel)
        state.flow.pop("awaiting", None)
        state.flow.pop("notes", None)
        state.flow["lead_id"] = outcome.lead_id
        state.profile.phone_verified = True  # the user left it for a callback, with consent
        template = LEAD_CREATED if outcome.created else LEAD_EXISTS
        return Reply(text=template.format(lead_id=outcome.lead_id, hours=self.working_hours), lead_id=outcome.lead_id)

    # ---------------------------------------------------------------- contact parts of a typed message

    @staticmethod
    def remember_name(state: ConversationState, name: str) -> None:
        """The name the user gave («меня зовут Ольга»): kept for the lead, never repeated back."""
        state.profile.name = name[:256]

    async def on_message_contact(
        self, state: ConversationState, message: Understanding, *, channel: str, now: datetime, key: str | None
    ) -> Reply:
        """A typed phone or e-mail before any lead: the first phone starts the contact flow (consent
        first); other phones, e-mails and remarks wait in the conversation and go into the lead's note."""
        known = message.phones[0] if message.phones else state.profile.phone
        extra = note_parts(message, known)
        if extra:
            state.flow["notes"] = [*state.flow.get("notes", []), *extra][-10:]
        if message.phones:
            return await self.on_phone(state, message.phones[0], name=message.name, channel=channel, now=now, key=key)
        if message.bad_phone:
            state.flow["awaiting"] = "phone"
            return Reply(text=BAD_PHONE, actions=[Action.ask_contact])
        reply = await self.start(state, channel=channel, now=now, key=key)
        if state.flow.get("awaiting") == "phone":
            reply.text = f"{NOTED_FOR_LEAD} {reply.text}"
        return reply

    @staticmethod
    def name_noted(state: ConversationState, channel: str) -> Reply:
        """Only a name: kept for the lead (not repeated back); the phone is asked again if awaited."""
        if state.flow.get("awaiting") == "phone":
            return Reply(text=ask_phone(Channel(channel)), actions=[Action.ask_contact])
        return Reply(text="Спасибо, записал ваше имя для менеджера.")

    async def add_to_lead(self, state: ConversationState, message: Understanding) -> Reply:
        """A second number or a remark once a lead exists: added to that lead's note, never a new lead."""
        lead_id = int(state.flow["lead_id"])
        parts = note_parts(message, state.profile.phone)
        if not parts and not message.name:
            return Reply(text=LEAD_EXISTS.format(lead_id=lead_id), lead_id=lead_id)
        await self.leads.annotate(lead_id, note=(NOTE_PREFIX + "; ".join(parts)) if parts else None, name=message.name)
        what = masked_parts(message, state.profile.phone) or "ваше имя"
        return Reply(text=NOTE_ADDED.format(lead_id=lead_id, what=what), lead_id=lead_id)
