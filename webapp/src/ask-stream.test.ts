import { afterEach, describe, expect, it, vi } from "vitest";
import { askLive, askStream, SseParser, StreamDropped } from "./ask-stream";
import { newMessageKey } from "./message-key";
import { ApiError } from "./telegram";

function streamOf(chunks: string[], contentType = "text/event-stream", breakAtEnd = false): Response {
  const queue = [...chunks];
  const body = new ReadableStream<Uint8Array>({
    pull(controller) { // one chunk per read, as from a network, then the end or a broken connection
      const chunk = queue.shift();
      if (chunk !== undefined) controller.enqueue(new TextEncoder().encode(chunk));
      else if (breakAtEnd) controller.error(new TypeError("network error"));
      else controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": contentType } });
}

afterEach(() => vi.unstubAllGlobals());

describe("SseParser", () => {
  it("joins events split across chunks and CRLF line ends", () => {
    const parser = new SseParser();
    expect(parser.push('event: delta\r\ndata: {"text": "Здрав')).toEqual([]);
    expect(parser.push('ствуйте!"}\r\n\r\nevent: reply\ndata: {"ok": true}\n\n')).toEqual([
      { event: "delta", data: '{"text": "Здравствуйте!"}' },
      { event: "reply", data: '{"ok": true}' },
    ]);
  });
});

describe("askStream", () => {
  it("hands on statuses and deltas, then resolves with the reply", async () => {
    const fetchMock = vi.fn().mockResolvedValue(
      streamOf([
        'event: status\ndata: {"text": "Подбираю программы…"}\n\n',
        'event: delta\ndata: {"text": "Здравствуйте!"}\n\nevent: delta\ndata: {"text": "Здравствуйте! Курс',
        ' есть."}\n\nevent: reply\ndata: {"ok": true, "text": "Здравствуйте! Курс есть."}\n\n',
      ]),
    );
    vi.stubGlobal("fetch", fetchMock);
    const seen: string[] = [];
    const reply = await askStream<{ text: string }>({ message: "hi" }, { Authorization: "tma x" }, {
      onStatus: (text) => seen.push(`status:${text}`),
      onDelta: (text) => seen.push(`delta:${text}`),
    });
    expect(reply.text).toBe("Здравствуйте! Курс есть.");
    expect(seen).toEqual(["status:Подбираю программы…", "delta:Здравствуйте!", "delta:Здравствуйте! Курс есть."]);
    expect(fetchMock.mock.calls[0][1].headers.Accept).toBe("text/event-stream");
  });

  it("turns an error event into an ApiError with the server's reason", async () => {
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(streamOf(['event: error\ndata: {"ok": false, "reason": "internal_error"}\n\n'])));
    await expect(askStream({ message: "hi" }, {})).rejects.toMatchObject({ reason: "internal_error" });
  });

  it("keeps the status of a refusal before the stream (rate limit)", async () => {
    const limited = new Response(JSON.stringify({ ok: false, reason: "rate_limited" }), { status: 429 });
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(limited));
    const error = await askStream({ message: "hi" }, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(429);
  });

  it("accepts a plain JSON answer from a server that does not stream", async () => {
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(new Response('{"ok": true, "text": "Ответ"}', { headers: { "content-type": "application/json" } })));
    await expect(askStream<{ text: string }>({ message: "hi" }, {})).resolves.toMatchObject({ text: "Ответ" });
  });

  it("reports a stream that ends or breaks before its reply as dropped", async () => {
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(streamOf(['event: delta\ndata: {"text": "Здрав"}\n\n'])));
    await expect(askStream({ message: "hi" }, {})).rejects.toBeInstanceOf(StreamDropped);
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(streamOf(['event: delta\ndata: {"text": "Здрав"}\n\n'], "text/event-stream", true)));
    await expect(askStream({ message: "hi" }, {})).rejects.toBeInstanceOf(StreamDropped);
  });

  it("skips a damaged event and still takes the reply", async () => {
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(streamOf(['event: delta\ndata: {"text": \n\nevent: reply\ndata: {"text": "Ответ"}\n\n'])));
    const deltas: string[] = [];
    await expect(askStream<{ text: string }>({ message: "hi" }, {}, { onDelta: (t) => deltas.push(t) })).resolves.toEqual({ text: "Ответ" });
    expect(deltas).toEqual([]);
  });
});

describe("askLive", () => {
  const body = { message: "Сколько стоит?", idempotency_key: "key-0001-abcd" };

  it("asks the same message again without the stream when the connection drops mid-answer", async () => {
    const fetchMock = vi.fn()
      .mockResolvedValueOnce(streamOf(['event: delta\ndata: {"text": "Курс стоит"}\n\n'], "text/event-stream", true))
      .mockResolvedValueOnce(new Response('{"ok": true, "text": "Курс стоит 36 900 ₽ за семестр."}', { headers: { "content-type": "application/json" } }));
    vi.stubGlobal("fetch", fetchMock);
    const seen: string[] = [];
    const reply = await askLive<{ text: string }>(body, { Authorization: "tma x" }, {
      onDelta: (text) => seen.push(`delta:${text}`),
      onDropped: () => seen.push("dropped"),
    });
    expect(reply.text).toBe("Курс стоит 36 900 ₽ за семестр.");
    expect(seen).toEqual(["delta:Курс стоит", "dropped"]);
    expect(fetchMock).toHaveBeenCalledTimes(2);
    const [first, retry] = fetchMock.mock.calls.map(([, init]) => init as RequestInit);
    expect(JSON.parse(String(first.body)).idempotency_key).toBe(body.idempotency_key);
    expect(JSON.parse(String(retry.body))).toEqual({ ...body, stream: false }); // the same message, not a new one
    expect((retry.headers as Record<string, string>).Accept).toBeUndefined();
    expect((retry.headers as Record<string, string>).Authorization).toBe("tma x");
  });

  it("does not ask again after the server's error event or a refusal (the parent decides to retry)", async () => {
    for (const response of [
      streamOf(['event: error\ndata: {"ok": false, "reason": "internal_error"}\n\n']),
      new Response(JSON.stringify({ ok: false, reason: "rate_limited" }), { status: 429 }),
    ]) {
      const fetchMock = vi.fn().mockResolvedValue(response);
      vi.stubGlobal("fetch", fetchMock);
      const dropped = vi.fn();
      await expect(askLive(body, {}, { onDropped: dropped })).rejects.toBeInstanceOf(ApiError);
      expect(fetchMock).toHaveBeenCalledTimes(1);
      expect(dropped).not.toHaveBeenCalled();
    }
  });
});

describe("newMessageKey", () => {
  it("gives keys the server accepts, different each time", () => {
    const keys = new Set(Array.from({ length: 50 }, newMessageKey));
    expect(keys.size).toBe(50);
    for (const key of keys) expect(key).toMatch(/^[A-Za-z0-9_.:-]{8,64}$/);
  });
});
