"""The school's urgent topics (refund after payment, disputed charges, paid but no access, complaints,
child safety, legal threats): handed to a manager at once, with empathy, no selling, no data collection
and no promise, in offline and in model mode, and the handoff holds through later neutral messages.
The brand's own topics (catalog/kmipt.rules.yaml ``handoff_topics``) and the defaults
(prompts/intents.yaml ``urgent``) are both read; a topic that is not urgent (Лобня, individual lessons)
is answered and the manager offered, never a silenced bot."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import respx

from adapters.runtime import Runtime
from agent.brand_rules import load_brand_rules
from agent.contact import HANDOFF
from agent.intents import load_intents
from agent.rules_guard import RulesGuard
from agent.types import Action, Channel, Reply
from agent.understanding import understand
from tests import openai_fakes as fake
from tests.assistant_helpers import Chat, assistant_runtime
from tests.conftest import REPO

INTENTS = load_intents(REPO / "prompts" / "intents.yaml")
KMIPT = RulesGuard(load_brand_rules(REPO / "catalog", "kmipt"))

# How parents write them: typos, both genders, several questions in one message (the urgent part wins).
URGENT = [
    "я оплатила курс, а доступа нет",
    "Я оплатил курс, а доступа нет",
    "оплотила курс а доступа нет((",
    "опатили 3 дня назад, ссылки нет",
    "заплатили за курс, а в личный кабинет войти не можем",
    "деньги списали а доступа к урокам нету",
    "доступа к курсу нет хотя я всё оплатила",
    "оплатила лагерь, а подтверждения так и нет",
    "оплатила 2 недели назад и тишина, ни ссылки ни доступа",
    "оплатил, а ничего не пришло",
    "Здравствуйте, я оплотила курс 2 недели назад, а доступа к урокам так и нет. и скажите сколько стоит второй предмет",
    "оплатили в сентябре, а ссылку на занятия нам так до сих пор и не прислали",
    "деньги ушли а в личном кабинете пусто",
    "оплата прошла, но курс не открывается",
    "я перевела деньги, а мне никто не ответил",
    "оплатила, а в группу так и не добавили",
    "почему с меня списали деньги? я не записывалась",
    "сын пришел с занятия в слезах, его обзывают",
    "Мы оплатили, хотим вернуть деньги, ребёнок заболел и больше не будет ходить",
    "Добрый день, оплата прошла, а письма с доступом нет. И сколько стоит лагерь?",
    "Сколько стоит ЕГЭ по физике? И ещё: оплатили в сентябре, а доступа до сих пор нет",
    "верните деньги пожалуйста, ребёнок не хочет ходить",
    "Хочу оформить возврат, мы оплатили семестр",
    "мы передумали, хотим забрать деньги, оплатили в сентябре",
    "хочу возврат",
    "вы мне деньги вернете или нет??",
    "денги списали два раза",
    "Почему списали 2 раза за октябрь?",
    "преподаватель накричал на сына",
    "Мне не нравится как ведет преподаватель, хочу жалобу оставить",
    "сына обижают в группе",
    "ребенка травят одноклассники на курсе",
    "сыну угрожает другой ученик",
    "дочь не вернулась с занятия, где она?",
    "Буду жаловаться в прокуратуру",
    "Подам на вас в суд, если не вернёте деньги",
]
# Not urgent: refund rules asked before paying, a missed lesson, how access works, plain questions.
NOT_URGENT = [
    "а если не понравится, деньги вернёте?",
    "а деньги вернете если не понравится?",
    "можно ли вернуть деньги если ребенок заболеет?",
    "какие условия возврата?",
    "До оплаты хочу уточнить: если передумаем, вернёте деньги?",
    "как получить доступ к урокам после оплаты?",
    "когда придёт доступ после оплаты?",
    "спишите занятие из-за болезни",
    "а можно вернуть деньги за пропущенное по болезни занятие?",
    "ребенок болел, справка есть, можно вернуть деньги за эти занятия?",
    "судя по отзывам, у вас сильные преподаватели. Сколько стоит ЕГЭ?",
    "Есть ли скидка при оплате за год?",
    "Сколько стоит ЕГЭ по физике?",
]
# No contact request, no offer, no promise of a time or an amount in an urgent reply.
_SELLING_OR_PROMISE = re.compile(r"телефон|номер|запис|пробн|скидк|₽|сейчас|завтра|сегодня|немедленно", re.IGNORECASE)


def read(text: str):
    return understand(text, INTENTS, handoff_topic=KMIPT.handoff)


@pytest.mark.parametrize("text", URGENT)
def test_urgent_phrasings_are_recognised(text: str) -> None:
    message = read(text)
    assert message.urgent is not None and message.urgent.urgent, text


@pytest.mark.parametrize("text", NOT_URGENT)
def test_questions_before_paying_are_not_urgent(text: str) -> None:
    assert read(text).urgent is None, text


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await assistant_runtime(tmp_path)
    yield runtime
    await runtime.close()


def _assert_urgent_handoff(reply: Reply) -> None:
    assert Action.handoff in reply.actions and not reply.silent
    assert reply.quick_replies == [] and reply.cards == [] and reply.lead_id is None
    assert re.search(r"понима|жаль|сожале|спасибо", reply.text, re.IGNORECASE), reply.text  # empathy
    assert not _SELLING_OR_PROMISE.search(reply.text), reply.text


@pytest.mark.parametrize("channel", [Channel.telegram, Channel.api, Channel.miniapp])
async def test_paid_but_no_access_is_handed_over_and_the_handoff_holds(rt: Runtime, channel: Channel) -> None:
    chat = Chat(rt, user_id="701", channel=channel)
    _assert_urgent_handoff(await chat.send(text="я оплатила курс, а доступа нет"))
    (notice,) = rt.notifier.handoffs
    assert notice.reason.startswith("Срочная тема")
    for later in ("ок", "спасибо", "а сколько стоит ЕГЭ?"):
        reply = await chat.send(text=later)
        assert reply.silent and reply.quick_replies == [] and reply.cards == [], later  # no selling restarts
    assert len(rt.notifier.handoffs) == 1


async def test_urgent_with_a_phone_collects_nothing(rt: Runtime) -> None:
    reply = await Chat(rt, user_id="702").send(text="Оплатили в сентябре, доступа нет. Мой номер 8 916 555-12-34")
    _assert_urgent_handoff(reply)
    state = await rt.store.load("telegram", "702", "kmipt")
    assert state.profile.phone is None and not state.flow.get("awaiting")


async def test_a_refund_question_before_paying_gets_the_facts(rt: Runtime) -> None:
    reply = await Chat(rt, user_id="703").send(text="а если не понравится, деньги вернёте?")
    assert Action.handoff not in reply.actions and not reply.silent
    assert "Источник:" in reply.text and "за вычетом посещённых" in reply.text, reply.text  # the refund rule
    assert "уже оплатили" not in reply.text.partition("\n")[0]  # not the after-payment section next to it


async def test_model_mode_hands_over_before_the_model_is_asked(tmp_path: Path) -> None:
    rt = await assistant_runtime(tmp_path, model=True)
    try:
        with respx.mock(base_url=fake.BASE_URL, assert_all_called=False) as api:
            route = api.post("/responses").mock(side_effect=[fake.response(fake.answer("Курс ЕГЭ стоит …"))])
            chat = Chat(rt, user_id="704")
            _assert_urgent_handoff(await chat.send(text="Мы оплатили, а доступа к урокам до сих пор нет!"))
            assert (await chat.send(text="ок, а расписание какое?")).silent
        assert route.call_count == 0
    finally:
        await rt.close()


@pytest.mark.parametrize("text", ["Есть ли занятия в Лобне?", "Нужны индивидуальные занятия по физике для 9 класса"])
async def test_a_topic_that_is_not_urgent_is_answered_with_the_manager_offered(rt: Runtime, text: str) -> None:
    chat = Chat(rt, user_id="705")
    reply = await chat.send(text=text)
    assert not reply.silent and reply.text and HANDOFF in [q.payload for q in reply.quick_replies], reply
    assert rt.notifier.handoffs == []  # offered, not forced: the bot keeps answering
    later = await chat.send(text="А сколько стоит ЕГЭ по физике онлайн?")
    assert not later.silent and "₽" in later.text


async def test_model_mode_answers_a_topic_that_is_not_urgent_and_offers_the_manager(tmp_path: Path) -> None:
    rt = await assistant_runtime(tmp_path, model=True)
    try:
        with respx.mock(base_url=fake.BASE_URL) as api:
            route = api.post("/responses").mock(
                side_effect=[fake.response(fake.answer("Индивидуальные занятия возможны по запросу."))]
            )
            reply = await Chat(rt, user_id="706").send(text="Нужны индивидуальные занятия по физике")
        assert route.call_count == 1 and reply.engine == "model" and not reply.silent
        assert HANDOFF in [q.payload for q in reply.quick_replies] and rt.notifier.handoffs == []
        sent = route.calls[0].request.content.decode()
        assert "предложите менеджера" in json.loads(sent)["instructions"]  # the prompt tells the model the same
    finally:
        await rt.close()
