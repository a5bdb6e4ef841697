// POST /api/assistant/ask as Server-Sent Events: the answer's checked text arrives as it is written
// (`delta`, the whole text so far), tool rounds as `status`, and the final reply object last (`reply`),
// which wins over the deltas. EventSource can only GET, so the stream is read from fetch.
// askLive adds the one recovery a phone needs: when the connection drops mid-stream, the same message
// (same idempotency_key) is asked again without streaming; the server answers it from the stored turn,
// so the parent gets the reply once and the conversation has the turn once.

import { ApiError, requestJson } from "./telegram";

const ASK_URL = "/api/assistant/ask";

export interface StreamHandlers {
  onStatus?: (text: string) => void;
  onDelta?: (text: string) => void;
}

export interface LiveHandlers extends StreamHandlers {
  /** The stream broke before its reply: what was shown is kept while the reply is asked for again. */
  onDropped?: () => void;
}

export interface SseEvent {
  event: string;
  data: string;
}

/** The connection ended (or broke) after the server accepted the message, before the final reply. */
export class StreamDropped extends ApiError {
  constructor() {
    super(0, "stream_dropped");
  }
}

/** Splits the event stream into events; feed it text chunks as they come, in order. */
export class SseParser {
  private buffer = "";

  push(chunk: string): SseEvent[] {
    this.buffer += chunk.replace(/\r\n?/g, "\n");
    const events: SseEvent[] = [];
    let end: number;
    while ((end = this.buffer.indexOf("\n\n")) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) events.push({ event, data: data.join("\n") });
    }
    return events;
  }
}

async function post(body: object, headers: Record<string, string>, accept: string): Promise<Response> {
  try {
    return await fetch(ASK_URL, {
      method: "POST",
      credentials: "same-origin",
      headers: { ...headers, "Content-Type": "application/json", Accept: accept },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, typeof navigator !== "undefined" && navigator.onLine === false ? "offline" : "unreachable"); // the request got no answer at all
  }
}

/** Ask the assistant and follow the stream; resolves with the final reply object. */
export async function askStream<T>(body: object, headers: Record<string, string>, handlers: StreamHandlers = {}): Promise<T> {
  const response = await post(body, headers, "text/event-stream");
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new ApiError(response.status, problem.reason ?? "error", problem.field ?? undefined);
  }
  if (!response.body || !(response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    return (await response.json()) as T; // a server without streaming answers the plain reply
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  for (;;) {
    let chunk: ReadableStreamReadResult<string>;
    try {
      chunk = await reader.read();
    } catch {
      throw new StreamDropped(); // the network went away mid-answer
    }
    if (chunk.done) break;
    for (const { event, data } of parser.push(chunk.value)) {
      let payload: { text?: string; reason?: string; field?: string };
      try {
        payload = JSON.parse(data);
      } catch {
        continue; // a damaged event is skipped; the final reply still decides what is shown
      }
      if (event === "status" && typeof payload.text === "string") handlers.onStatus?.(payload.text);
      else if (event === "delta" && typeof payload.text === "string") handlers.onDelta?.(payload.text);
      else if (event === "reply") return payload as T;
      else if (event === "error") throw new ApiError(500, payload.reason ?? "error", payload.field ?? undefined);
    }
  }
  throw new StreamDropped();
}

/** The chat's way to ask: streamed, and once more without the stream (same key) if the stream drops. */
export async function askLive<T>(body: { idempotency_key: string } & object, headers: Record<string, string>, handlers: LiveHandlers = {}): Promise<T> {
  try {
    return await askStream<T>(body, headers, handlers);
  } catch (error) {
    if (!(error instanceof StreamDropped)) throw error;
    handlers.onDropped?.();
    return requestJson<T>(ASK_URL, {
      method: "POST",
      headers: { ...headers, "Content-Type": "application/json" },
      body: JSON.stringify({ ...body, stream: false }),
    });
  }
}
