"""The anonymised context a CRM record may give the model and /api/crm/lookup.

Only whitelisted, non-personal fields are read (client type, branch, subscriptions, last change), and
even those are dropped when staff typed a phone or an e-mail into them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from agent.personal_data import redact_contacts
from agent.ports import CrmLookupResult

MAX_ITEMS = 10
MAX_ITEM_CHARS = 64
TALLANTO_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_LIST_SPLIT = re.compile(r"[,;\n|]+")


def clean_labels(values: Iterable[object]) -> list[str]:
    labels: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue
        text = " ".join(value.split())
        if not text or redact_contacts(text) != text or len(text) > MAX_ITEM_CHARS or text in labels:
            continue
        labels.append(text)
    return labels[:MAX_ITEMS]


def days_since(moment: datetime | None, *, now: datetime | None = None) -> int | None:
    if moment is None:
        return None
    return max(0, ((now or datetime.now(UTC)) - moment).days)


def parse_tallanto_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        # Tallanto answers in the tenant's local time without a zone; a day's precision is enough here.
        return datetime.strptime(value.strip(), TALLANTO_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def from_tallanto(record: dict[str, object]) -> CrmLookupResult:
    tags = clean_labels([record.get("type_client_c"), record.get("filial")])
    abonements = record.get("abonements")
    interests = clean_labels(_LIST_SPLIT.split(abonements) if isinstance(abonements, str) else [])
    touched = parse_tallanto_time(record.get("date_modified")) or parse_tallanto_time(record.get("date_entered"))
    return CrmLookupResult(found=True, tags=tags, interests=interests, last_touch_days=days_since(touched))


def from_amo(contact: dict[str, object]) -> CrmLookupResult:
    embedded = contact.get("_embedded")
    raw_tags = embedded.get("tags", []) if isinstance(embedded, dict) else []
    tags = clean_labels(t.get("name") for t in raw_tags if isinstance(t, dict)) if isinstance(raw_tags, list) else []
    updated = contact.get("updated_at")
    touched = datetime.fromtimestamp(updated, UTC) if isinstance(updated, int) and updated > 0 else None
    return CrmLookupResult(found=True, tags=tags, last_touch_days=days_since(touched))
