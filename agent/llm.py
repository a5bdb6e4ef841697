"""The model client: the openai SDK (over aiohttp), the retry policy and the call shapes. Imported only
when OPENAI_API_KEY is set (the SDK is a slow import; the data shapes live in agent/llm_types.py).

Every model call goes through ``LLM.respond`` (a Responses API turn with function tools and a strict
json_schema final answer) or ``LLM.web_search`` (the domain-limited web_search tool). The SDK's own
retries are off (``max_retries=0``) so tenacity is the one retry policy: 429, 408/409, 5xx,
timeouts and connection errors are retried, honouring ``Retry-After`` / ``retry-after-ms``.
After the last attempt the caller gets ``ModelUnavailable`` and answers with the offline policy.
With OPENAI_STREAM (default) ``respond`` streams (``stream: true``, server-sent events) so the answer
can be shown as it is written; a failure after text was handed on is not retried (it would be shown
twice), and a server that ignores the flag and answers plain JSON still works.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import httpx2
import openai
import orjson
from openai import AsyncOpenAI, AsyncStream
from openai._models import construct_type
from openai._streaming import ServerSentEvent
from openai.types.responses import Response
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from agent.errors import ModelUnavailable
from agent.guardrails import host_allowed
from agent.llm_types import Citation, FunctionCall, ModelOutput, TextSink, WebAnswer
from agent.settings import Settings
from agent.types import Usage

log = logging.getLogger(__name__)

# A server asking for a longer pause than this is treated as down for this turn.
MAX_RETRY_AFTER_SECONDS = 20.0
# The body keys in the order ``client.responses.create`` writes them, so the request bytes are the same.
BODY_KEYS = ("model", "input", "instructions", "parallel_tool_calls", "store", "stream", "text", "tool_choice", "tools")
# Conversations waiting for the model each hold a connection, so the pool must not cap them (aiohttp's
# connector default is 100; the SDK's own client allows 1000). aiohttp keeps them all alive.
CONNECTION_LIMITS = httpx2.Limits(max_connections=1000)
# What ``responses.create`` asks of the client's auth: the API key as a bearer token.
REQUEST_OPTIONS: Any = {"security": {"bearer_auth": True}}
_backoff = wait_exponential_jitter(multiplier=0.5, max=8.0)


def _header_delay(headers: httpx.Headers | Any) -> float | None:
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _retryable(error: BaseException) -> bool:
    if isinstance(error, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(error, openai.APIStatusError):
        if error.status_code == 429:
            # A spent quota does not come back by waiting.
            return getattr(error, "code", None) != "insufficient_quota"
        return error.status_code in (408, 409) or error.status_code >= 500
    return False


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, openai.APIStatusError):
        delay = _header_delay(error.response.headers)
        if delay is not None:
            return min(delay, MAX_RETRY_AFTER_SECONDS)
    return _backoff(state)


def _usage(response: Any) -> Usage:
    usage = getattr(response, "usage", None)
    if usage is None:
        return Usage(model_calls=1)
    return Usage(
        model_calls=1,
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        total_tokens=usage.total_tokens or 0,
    )


# What a server that ignores ``"stream": true`` answered (one JSON Response instead of events).
PLAIN_RESPONSE_EVENT = "plain-json-response"
FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


class BlockSSEDecoder:
    """Server-sent events decoded from whole chunks (the SDK's ``SSEBytesDecoder`` protocol).

    The SDK's ``SSEDecoder`` passes every line through a chain of generators, a regex and a growing
    bytearray: three lines an event, ~36 events for a short streamed answer, ~0.5 ms of the shared
    event loop per answer, the largest part of what a streamed turn cost over a plain one. Splitting
    each chunk into lines with one ``bytes.split`` and reading them in one loop gives the same events
    (any chunking, CR / LF / CRLF line ends, comments, multi-line data, ids that last: the SDK's
    decoder is the reference in tests/test_streaming.py) for about half of that."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._last_id: str | None = None  # like the SDK: an event id lasts until the next one
        self._retry: int | None = None

    def iter_bytes(self, iterator: Iterator[bytes]) -> Iterator[ServerSentEvent]:
        for chunk in iterator:
            yield from self._feed(chunk)
        yield from self._finish()

    async def aiter_bytes(self, iterator: AsyncIterator[bytes]) -> AsyncIterator[ServerSentEvent]:
        async for chunk in iterator:
            for event in self._feed(chunk):
                yield event
        for event in self._finish():
            yield event

    def _feed(self, chunk: bytes) -> list[ServerSentEvent]:
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            held = buffer.endswith(b"\r")  # maybe the first half of a CRLF split between chunks
            buffer = buffer[:-1] if held else buffer
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + (b"\r" if held else b"")
        *lines, self._buffer = buffer.split(b"\n")
        events: list[ServerSentEvent] = []
        for raw in lines:
            line = raw.decode("utf-8")
            if not line:  # a blank line ends the event
                if self._event or self._data or self._last_id or self._retry is not None:
                    events.append(ServerSentEvent(event=self._event, data="\n".join(self._data), id=self._last_id, retry=self._retry))
                self._event, self._data, self._retry = None, [], None
                continue
            if line[0] == ":":
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value[:1] == " " else value
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self._last_id = value
            elif name == "retry":
                try:
                    self._retry = int(value)
                except (TypeError, ValueError):
                    pass
        return events

    def _finish(self) -> list[ServerSentEvent]:
        """The end of the stream: a held CR ends its line; an event without its blank line is dropped."""
        rest, self._buffer = self._buffer, b""
        return self._feed(rest[:-1] + b"\n") if rest.endswith(b"\r") else []


class _Events(AsyncStream[ServerSentEvent]):
    """The raw server-sent events of ``POST /responses`` with ``stream: true``.

    The SDK's stream would build a typed pydantic event for every text delta; only the deltas' text
    and the final ``response.*`` event are needed, so the events stay raw (less CPU per streamed turn,
    on the event loop every conversation shares). An OpenAI-compatible server that answers with plain
    JSON instead of a stream yields that body as one event, so it keeps working."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._decoder = BlockSSEDecoder()

    async def __stream__(self) -> Any:  # type: ignore[override]
        try:
            if "text/event-stream" not in self.response.headers.get("content-type", ""):
                yield ServerSentEvent(event=PLAIN_RESPONSE_EVENT, data=(await self.response.aread()).decode("utf-8", "replace"))
                return
            async for event in self._iter_events():
                yield event
        finally:
            await self.response.aclose()


def default_http_client(settings: Settings) -> httpx.AsyncClient | httpx2.AsyncClient:
    """The SDK over aiohttp (``openai.DefaultAioHttpClient``, the SDK's option for high concurrency):
    the same requests as its default httpx transport for ~30 % less CPU per call, and that CPU, on the
    event loop, is what many conversations waiting on the model at once queue behind. Tests replace
    this with a plain httpx client that respx intercepts (tests/conftest.py)."""
    return openai.DefaultAioHttpClient(timeout=settings.openai_timeout_seconds, limits=CONNECTION_LIMITS)


class LLM:
    def __init__(
        self,
        settings: Settings,
        *,
        http_client: httpx.AsyncClient | httpx2.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not settings.llm_configured:
            raise ModelUnavailable("OPENAI_API_KEY is not set")
        assert settings.openai_api_key is not None
        self.model = settings.openai_model
        self.attempts = settings.openai_max_retries + 1
        self.streaming = settings.openai_stream
        self._sleep = sleep
        self._http = http_client or default_http_client(settings)
        self.client = AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url or None,
            timeout=settings.openai_timeout_seconds,
            max_retries=0,
            http_client=self._http,
        )

    async def aclose(self) -> None:
        await self.client.close()

    async def _create(self, *, on_text: TextSink | None = None, **params: Any) -> Any:
        """POST /responses with an already JSON-ready body.

        ``client.responses.create`` would first walk the whole body (every tool schema, every input item)
        through the SDK's TypedDict transform, which changes nothing for plain JSON like ours but was
        two thirds of the SDK's CPU per call. The SDK's own client still sends it (auth, headers,
        timeouts, errors, the typed ``Response``): the same request bytes at the HTTP seam
        (tests/test_llm.py compares them with ``responses.create``)."""
        stream = self.streaming and on_text is not None
        params = {"model": self.model, "store": False, **params}
        if stream:
            params["stream"] = True
        if unknown := params.keys() - set(BODY_KEYS):
            raise TypeError(f"add {sorted(unknown)} to BODY_KEYS in the SDK's order")
        body = {key: params[key] for key in BODY_KEYS if key in params}
        delivered: list[bool] = []  # text already went to on_text: no retry (it would be shown twice)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            retry=retry_if_exception(lambda error: not delivered and _retryable(error)),
            wait=_wait,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if stream:
                        assert on_text is not None
                        response = await self._streamed(body, on_text, delivered)
                    else:
                        response = await self.client.post("/responses", body=body, cast_to=Response, options=REQUEST_OPTIONS)
        except openai.OpenAIError as error:
            status = getattr(error, "status_code", None)
            log.warning("model call failed: %s status=%s", type(error).__name__, status)
            raise ModelUnavailable(f"{type(error).__name__} (status {status})") from error
        if not isinstance(getattr(response, "output", None), list):
            # A proxy's HTML page with status 200 parses as a plain string, not a Response.
            raise ModelUnavailable("the model endpoint answered something that is not a Responses object")
        return response

    async def _streamed(self, body: dict[str, Any], on_text: TextSink, delivered: list[bool]) -> Any:
        """One streamed call: text deltas go to ``on_text`` as they come; the final ``response.*``
        event carries the same Response a plain call returns."""
        events = await self.client.post(
            "/responses", body=body, cast_to=Response, options=REQUEST_OPTIONS, stream=True, stream_cls=_Events
        )
        final: Any = None
        async for event in events:
            kind = event.event
            # orjson: a quarter of json's time on these small non-ASCII objects, one per text delta.
            if kind == "response.output_text.delta":
                delivered.append(True)
                on_text(orjson.loads(event.data)["delta"])
            elif kind in FINAL_EVENTS:
                final = orjson.loads(event.data)["response"]
            elif kind == PLAIN_RESPONSE_EVENT:
                try:
                    final = event.json()
                except ValueError:
                    final = event.data  # e.g. a proxy's HTML page: refused below
            elif kind == "error":
                data = event.json()
                raise ModelUnavailable(f"the stream reported an error: {str(data.get('code') or data.get('message'))[:80]}")
        if final is None:
            raise ModelUnavailable("the stream ended before the response was complete")
        return construct_type(type_=Response, value=final) if isinstance(final, dict) else final

    async def respond(
        self,
        *,
        instructions: str,
        input_items: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        answer_format: dict[str, Any],
        allow_tools: bool = True,
        on_text: TextSink | None = None,
    ) -> ModelOutput:
        """One model round. With ``on_text`` (and OPENAI_STREAM on) the answer is streamed and each
        ``output_text`` delta is handed on as it arrives."""
        response = await self._create(
            on_text=on_text,
            instructions=instructions,
            input=input_items,
            tools=tools,
            tool_choice="auto" if allow_tools else "none",
            parallel_tool_calls=True,
            text={"format": answer_format},
        )
        calls = [
            FunctionCall(call_id=item.call_id, name=item.name, arguments=item.arguments)
            for item in response.output
            if getattr(item, "type", None) == "function_call"
        ]
        return ModelOutput(
            calls=calls,
            text=response.output_text or "",
            status=getattr(response, "status", None) or "completed",
            usage=_usage(response),
        )

    async def web_search(self, *, query: str, domain: str, instructions: str) -> WebAnswer:
        """Ask the model to search only ``domain``; citations that point elsewhere are dropped."""
        response = await self._create(
            instructions=instructions,
            input=query,
            tools=[{"type": "web_search", "filters": {"allowed_domains": [domain]}}],
        )
        kept: list[Citation] = []
        dropped = 0
        for item in response.output:
            if getattr(item, "type", None) != "message":
                continue
            for part in item.content:
                for note in getattr(part, "annotations", None) or []:
                    if getattr(note, "type", None) != "url_citation":
                        continue
                    if host_allowed(note.url, (domain,)):
                        if all(c.url != note.url for c in kept):
                            kept.append(Citation(url=note.url, title=note.title or ""))
                    else:
                        dropped += 1
        return WebAnswer(
            text=response.output_text or "", citations=kept, dropped_citations=dropped, usage=_usage(response)
        )
