"""The HTTP seam the openai SDK talks through during an eval: the SDK builds and parses real HTTP,
and these httpx transports answer it.

``CassetteTransport`` replays a recorded cassette in order and notes every request whose fingerprint
no longer matches the recording (the case is then STALE). ``LiveTransport`` forwards to the real
Responses API (or any compatible server) and keeps what it saw, so ``--record`` can write it back;
faults recorded on purpose (an outage) are re-injected at their place in their turn instead of being
forwarded.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from evals import streams
from evals.cases import Exchange
from evals.fingerprint import changed_parts, fingerprint, strip_echo

EXHAUSTED = {"error": {"message": "the cassette has no more recorded responses", "type": "eval_cassette", "code": None}}
DROPPED_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection"}


def http_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    if set(body) == {"raw"}:  # the server answered something that is not JSON (e.g. a proxy's HTML page)
        return httpx.Response(status, headers=headers, text=str(body["raw"]))
    return httpx.Response(status, headers=headers, json=body)


def replayed(entry: Exchange, streamed: bool) -> httpx.Response:
    """A recorded answer as the SDK asked for it: server-sent events for a streamed request (errors
    come before a stream starts, as plain JSON, like the real API's)."""
    if streamed and entry.status == 200 and isinstance(entry.body.get("output"), list):
        events = streams.response_events(entry.body, entry.deltas)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=streams.encode(events))
    return http_response(entry.status, entry.body)


def _body_of(content: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(content or b"{}")
    except ValueError:
        return {"raw": content.decode("utf-8", "replace")[:2000]}
    return parsed if isinstance(parsed, dict) else {"raw": content.decode("utf-8", "replace")[:2000]}


class _Seam(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.turn = 0
        self.seen: list[Exchange] = []

    def seen_in(self, turn: int) -> list[Exchange]:
        return [exchange for exchange in self.seen if exchange.turn == turn]


class CassetteTransport(_Seam):
    def __init__(self, cassette: list[Exchange]) -> None:
        super().__init__()
        self.cassette = cassette
        self.position = 0
        self.problems: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = _body_of(await request.aread())
        current = fingerprint(sent)
        if self.position >= len(self.cassette):
            self._problem(f"turn {self.turn}: a model call the cassette does not have (more calls than recorded)")
            return http_response(500, EXHAUSTED)
        number, entry = self.position, self.cassette[self.position]
        self.position += 1
        if entry.turn != self.turn:
            self._problem(f"entry {number} was recorded in turn {entry.turn} but requested in turn {self.turn}")
        elif entry.request.get("fingerprint") != current["fingerprint"]:
            parts = ", ".join(changed_parts(entry.request, current))
            self._problem(f"entry {number} (turn {self.turn}): the request changed ({parts})")
        self.seen.append(entry.model_copy(update={"request": current}))
        return replayed(entry, bool(sent.get("stream")))

    def finish(self) -> None:
        if not self.cassette:
            self._problem("no cassette recorded: run `python -m evals run --record` against a live model")
        elif self.position < len(self.cassette):
            self._problem(f"{len(self.cassette) - self.position} recorded responses were never requested")

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)


class LiveTransport(_Seam):
    def __init__(self, upstream: httpx.AsyncBaseTransport, cassette: list[Exchange], *, owns_upstream: bool) -> None:
        super().__init__()
        self.upstream = upstream
        self.owns_upstream = owns_upstream
        # A fault keeps its place in its turn: (turn, n) = the n-th model call of that turn.
        self.faults: dict[tuple[int, int], Exchange] = {}
        calls_in_turn: dict[int, int] = {}
        for exchange in cassette:
            n = calls_in_turn.get(exchange.turn, 0)
            calls_in_turn[exchange.turn] = n + 1
            if exchange.injected:
                self.faults[(exchange.turn, n)] = exchange
        self.problems: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = _body_of(await request.aread())
        current = fingerprint(sent)
        fault = self.faults.pop((self.turn, len(self.seen_in(self.turn))), None)
        if fault is not None:
            self.seen.append(fault.model_copy(update={"request": current}))
            return replayed(fault, bool(sent.get("stream")))
        response = await self.upstream.handle_async_request(request)
        try:
            content = await response.aread()
        finally:
            await response.aclose()
        deltas: list[str] | None = None
        if "text/event-stream" in response.headers.get("content-type", ""):
            final, deltas = streams.recorded(streams.decode(content))
            body = final if final is not None else {"raw": content.decode("utf-8", "replace")[:2000]}
        else:
            body = _body_of(content)
        exchange = Exchange(turn=self.turn, request=current, status=response.status_code, body=strip_echo(body), deltas=deltas or None)
        self.seen.append(exchange)
        headers = {k: v for k, v in response.headers.items() if k.lower() not in DROPPED_HEADERS}
        return httpx.Response(response.status_code, headers=headers, content=content)

    def finish(self) -> None:
        for turn, n in self.faults:
            self.problems.append(f"the fault recorded as call {n} of turn {turn} was never requested")

    async def aclose(self) -> None:
        if self.owns_upstream:
            await self.upstream.aclose()
