"""The one set of personal-data patterns: phones and e-mails as people type them.

Used to mask what the model sees and says (agent/guardrails.py, the prompt), to find a contact in a
message (agent/understanding.py), to keep contacts out of CRM free text (adapters/crm/payload.py) and
out of CRM tags (adapters/crm/anonymise.py). The phone's own rule (is it a Russian number?) is
agent/phones.py.
"""

from __future__ import annotations

import re

# A phone as people type it, 10 to 15 digits with spaces, dashes or brackets between them:
# +7 (999) 123-45-67, 8 999 123 45 67, 89991234567, 999 123-45-67 (ten digits, no country code).
PHONE_RE = re.compile(r"(?<![\w+])(?:\+?\d[\s\-()]*){9,14}\d(?!\w)")
EMAIL_RE = re.compile(r"\b([\w.%+-])[\w.%+-]*@([\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,})\b")


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", text)


def mask_phone(raw: str) -> str:
    """«+7 999 ***-**-67»: enough for the model to refer to it, not enough to call it."""
    digits = digits_of(raw)
    if len(digits) == 11 and digits[0] in "78":
        return f"+7 {digits[1:4]} ***-**-{digits[-2:]}"
    if len(digits) == 10:
        return f"+7 {digits[:3]} ***-**-{digits[-2:]}"
    return f"+{digits[:1]} *** ***-**-{digits[-2:]}"


def mask_email(match: re.Match[str]) -> str:
    return f"{match.group(1)}***@{match.group(2)}"


def mask_personal_data(text: str) -> str:
    """Phones and e-mails partly hidden (the model can still refer to them)."""
    text = EMAIL_RE.sub(mask_email, text)
    return PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)


def redact_contacts(text: str) -> str:
    """Phones and e-mails replaced by a placeholder (CRM free text gets the phone once, in its field)."""
    return EMAIL_RE.sub("[email]", PHONE_RE.sub("[телефон]", text))


def find_phone(text: str) -> str | None:
    match = PHONE_RE.search(text)
    return match.group(0) if match else None
