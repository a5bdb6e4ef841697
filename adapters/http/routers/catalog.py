"""GET /api/catalog/search: the top programs for a family's criteria (Mini App, bot, load smoke)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BeforeValidator

from adapters.http.catalog_answers import answers_route, query_key
from adapters.http.dependencies import BotUsernameDep, CatalogDep, SettingsDep, TodayDep, get_catalog, get_today
from adapters.http.ready import json_bytes, ready_json
from agent.catalog import Format, Goal, Grade, SearchCriteria, Subject


def _catalog_and_day(request: Request) -> tuple[object, date]:
    return get_catalog(request), get_today(request)


# Repeated queries are answered from ready bytes before parameters are parsed (catalog_answers.py).
router = APIRouter(route_class=answers_route("/api/catalog/search", _catalog_and_day))


def _blank_is_absent(value: object) -> object:
    # A form that sends "grade=" means "any grade", not a bad grade.
    return None if isinstance(value, str) and not value.strip() else value


Blank = BeforeValidator(_blank_is_absent)


@router.get("/api/catalog/search", response_model=dict[str, object])
async def catalog_search(
    request: Request,
    catalog: CatalogDep,
    today: TodayDep,
    settings: SettingsDep,
    brand: Annotated[str | None, Query(max_length=64, description="blank or absent: BRAND_DEFAULT")] = None,
    grade: Annotated[Grade | None, Blank, Query(description="1..11")] = None,
    goal: Annotated[Goal | None, Blank, Query()] = None,
    subject: Annotated[Subject | None, Blank, Query()] = None,
    format: Annotated[Format | None, Blank, Query()] = None,
) -> Response:
    criteria = SearchCriteria(grade=grade, goal=goal, subject=subject, format=format)
    result = catalog.search(brand or settings.brand_default, criteria, today=today)
    body = json_bytes({"ok": True, **result.model_dump(mode="json")})
    request.app.state.catalog_answers.put(catalog, today, query_key(request), body)
    return ready_json(body)


PHONE_IN_TEXT = re.compile(r"(?:\+7|8)\s?\(?\d{3}\)?[\s-]?\d{3}-\d{2}-\d{2}")
TELEGRAM_IN_TEXT = re.compile(r"Telegram\s+@(\w{5,32})")


@router.get("/api/brand")
async def brand_info(
    catalog: CatalogDep,
    settings: SettingsDep,
    username: BotUsernameDep,
    brand: Annotated[str | None, Query(max_length=64, description="blank or absent: BRAND_DEFAULT")] = None,
) -> dict[str, object]:
    """What the Mini App's header and its plain-browser page show: the school's name, phones (tel: links)
    and the bot's t.me link once the bot has introduced itself (getMe)."""
    info = catalog.brand(brand or settings.brand_default).brand  # unknown brand: 422
    phones = [{"text": text, "tel": "+7" + re.sub(r"\D", "", text)[1:]} for text in PHONE_IN_TEXT.findall(info.manager_contact)]
    school = TELEGRAM_IN_TEXT.search(info.manager_contact)
    return {
        "ok": True,
        "id": info.id,
        "name": info.name,
        "domain": info.domain,
        "contact": info.manager_contact,
        "phones": phones,
        "bot_url": f"https://t.me/{username}" if username else None,
        "school_telegram_url": f"https://t.me/{school.group(1)}" if school else None,
    }
