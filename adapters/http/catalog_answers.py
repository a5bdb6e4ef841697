"""GET /api/catalog/search served from ready bytes.

The catalog does not change between loads, so the answer to a query depends only on the query, the
catalog and the school's calendar day (which sessions are still ahead). The first request for a
query is validated and computed by the route as usual and its JSON kept here; later requests with
the same normalised query (the route's parameters, blank criteria dropped, order and unknown
parameters ignored) are answered before FastAPI parses and validates parameters. Only answers the route
produced are kept, so a query that fails validation never has an entry; the entries are bounded
(least recently used dropped first) and cleared when the catalog object or the day changes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.ready import ready_json

PARAMETERS = ("brand", "grade", "goal", "subject", "format")
MAX_ENTRIES = 2048

Key = tuple[str, ...]


_keys: dict[bytes, Key] = {}  # raw query string -> its key (the same few queries come again and again)


def query_key(request: Request) -> Key:
    raw = request.scope["query_string"]
    key = _keys.get(raw)
    if key is None:
        if len(_keys) >= MAX_ENTRIES:
            _keys.clear()
        key = _keys[raw] = _parse_key(request)
    return key


def _parse_key(request: Request) -> Key:
    """Equal keys mean equal validated parameters: the raw values (the last of a repeated parameter,
    as the route reads it), with a blank criterion the same as an absent one (the route's rule;
    a blank brand is not blank there, so it is kept as sent)."""
    params = request.query_params
    brand = params.get("brand") or ""
    return (brand, *(value if (value := params.get(name) or "").strip() else "" for name in PARAMETERS[1:]))


class CatalogAnswers:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Key, bytes] = OrderedDict()
        self._catalog: object = None
        self._day: date | None = None

    def get(self, catalog: object, day: date, key: Key) -> bytes | None:
        if catalog is not self._catalog or day != self._day:
            self._entries.clear()
            self._catalog, self._day = catalog, day
            return None
        body = self._entries.get(key)
        if body is not None:
            self._entries.move_to_end(key)
        return body

    def put(self, catalog: object, day: date, key: Key, body: bytes) -> None:
        if catalog is not self._catalog or day != self._day:
            self._entries.clear()
            self._catalog, self._day = catalog, day
        self._entries[key] = body
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


# (catalog, today) for a request: set by the router that installs the route.
Source = Callable[[Request], tuple[object, date]]


def answers_route(path: str, source: Source) -> type[APIRoute]:
    """An APIRoute class whose route at ``path`` answers from ``request.app.state.catalog_answers``
    first (the router's other routes are left as they are)."""

    class ReadyAnswerRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            compute = super().get_route_handler()
            if self.path != path:
                return compute

            async def handler(request: Request) -> Response:
                catalog, day = source(request)
                body = request.app.state.catalog_answers.get(catalog, day, query_key(request))
                if body is not None:
                    return ready_json(body)
                return await compute(request)

            return handler

    return ReadyAnswerRoute
