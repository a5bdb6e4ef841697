from __future__ import annotations

from agent.guardrails import MAX_INPUT_CHARS, REFUSAL, cap_input, check_reply, secret_lines_of
from agent.personal_data import find_phone, mask_personal_data
from agent.prompting import transcript_items
from agent.state import StoredMessage


def test_phones_and_emails_are_masked() -> None:
    text = "Звоните +7 (999) 123-45-67 или 8 916 765 43 21, пишите ivan.petrov@mail.ru"
    masked = mask_personal_data(text)
    assert "+7 999 ***-**-67" in masked
    assert "+7 916 ***-**-21" in masked
    assert "i***@mail.ru" in masked
    for secret in ("123-45", "765 43", "ivan.petrov"):
        assert secret not in masked


def test_grades_years_and_prices_are_not_taken_for_phones() -> None:
    text = "11 класс, 2026 год, 36 900 ₽, группа 7–9 человек"
    assert mask_personal_data(text) == text
    assert find_phone(text) is None
    assert find_phone("мой номер 89991234567") == "89991234567"


def test_long_input_is_cut() -> None:
    text, cut = cap_input("я" * (MAX_INPUT_CHARS + 10))
    assert cut and len(text) == MAX_INPUT_CHARS
    assert cap_input("коротко") == ("коротко", False)


def test_unknown_amounts_are_replaced_known_kept() -> None:
    checked = check_reply(
        "Курс стоит 36 900 ₽, скидка 5 000 руб., а индивидуально — 99 999 рублей.",
        known_amounts={36900, 5000},
        brand_domain="kmipt.ru",
    )
    assert "36 900 ₽" in checked.text and "5 000 руб." in checked.text
    assert "99 999" not in checked.text and "уточню у менеджера" in checked.text
    assert checked.removed_amounts == [99999]


def test_links_only_to_brand_and_telegram() -> None:
    checked = check_reply(
        "Смотрите https://kmipt.ru/courses/ и https://lk.kmipt.ru, t.me/unpk_mipt, а также https://evil.example/x.",
        known_amounts=set(),
        brand_domain="kmipt.ru",
        telegram_names={"unpk_mipt"},
    )
    assert "https://kmipt.ru/courses/" in checked.text and "https://lk.kmipt.ru" in checked.text
    assert "t.me/unpk_mipt" in checked.text
    assert "evil.example" not in checked.text
    assert checked.removed_links == ["https://evil.example/x"]


def test_prompt_and_schema_leaks_are_refused() -> None:
    prompt = "Вы — консультант образовательного центра, который помогает родителям подобрать курс и записаться."
    lines = secret_lines_of(prompt)
    leak = check_reply(f"Мои инструкции: {prompt}", known_amounts=set(), brand_domain="kmipt.ru", secret_lines=lines)
    assert leak.leaked and leak.text == REFUSAL
    schema = check_reply('{"parameters": {"additionalProperties": false}}', known_amounts=set(), brand_domain="kmipt.ru")
    assert schema.leaked
    fine = check_reply("Я консультант, помогу подобрать курс.", known_amounts=set(), brand_domain="kmipt.ru", secret_lines=lines)
    assert not fine.leaked


def test_a_quote_of_a_rendered_prompt_line_is_caught_despite_placeholders() -> None:
    template = "Вы — консультант центра {brand_name} ({brand_domain}) в Telegram и на сайте. Вы помогаете родителям и школьникам подобрать курс."
    rendered = template.replace("{brand_name}", "УНПК МФТИ").replace("{brand_domain}", "kmipt.ru")
    leak = check_reply(f"Конечно: «{rendered}»", known_amounts=set(), brand_domain="kmipt.ru", secret_lines=secret_lines_of(template))
    assert leak.leaked and leak.text == REFUSAL


def test_transcript_for_the_model_is_masked_and_bounded() -> None:
    messages = [StoredMessage(role="user", content=f"сообщение {i} " + "х" * 100) for i in range(200)]
    messages.append(StoredMessage(role="user", content="мой телефон 89991234567"))
    items = transcript_items(messages, max_chars=1000)
    assert items[-1]["content"] == "мой телефон +7 999 ***-**-67"
    assert sum(len(i["content"]) for i in items) <= 1000


def test_sales_tone_path_replaces_the_tone(tmp_path) -> None:
    import pytest

    from agent.prompting import load_prompts
    from agent.settings import ConfigError, load_settings
    from tests.conftest import make_settings

    tone = tmp_path / "tone.md"
    tone.write_text("Тон: строго по делу.", encoding="utf-8")
    prompts = load_prompts(make_settings(tmp_path, sales_tone_path=str(tone)))
    assert prompts.tone == "Тон: строго по делу." and "{brand_domain}" in prompts.system
    with pytest.raises(ConfigError, match="SALES_TONE_PATH"):
        load_settings(_env_file=None, sales_tone_path=str(tmp_path / "missing.md"))


def test_one_personal_data_pattern_set_for_the_model_and_the_crm() -> None:
    """The model's masking and the CRM's redaction see the same contacts (they used to differ: a ten
    digit phone reached the model unmasked, a Cyrillic e-mail reached it too)."""
    from agent.personal_data import redact_contacts

    text = "звоните 999 123-45-67 или +7 (916) 000-11-22, почта анна@почта.рф и anna.k@mail.ru"
    masked, redacted = mask_personal_data(text), redact_contacts(text)
    for contact in ("123-45-67", "000-11-22", "анна@почта.рф", "anna.k@mail.ru"):
        assert contact not in masked and contact not in redacted
    assert redacted == "звоните [телефон] или [телефон], почта [email] и [email]"
    assert "+7 999 ***-**-67" in masked and "+7 916 ***-**-22" in masked
