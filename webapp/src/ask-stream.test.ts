import { afterEach, describe, expect, it, vi } from "vitest";
import { askStream, SseParser } from "./ask-stream";
import { ApiError } from "./telegram";

function streamOf(chunks: string[], contentType = "text/event-stream"): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
      controller.close();
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

  it("fails when the stream ends without a reply", async () => {
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(streamOf(['event: delta\ndata: {"text": "Здрав"}\n\n'])));
    await expect(askStream({ message: "hi" }, {})).rejects.toMatchObject({ reason: "stream_ended" });
  });
});
