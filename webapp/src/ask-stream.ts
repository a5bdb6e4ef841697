// POST /api/assistant/ask as Server-Sent Events: the answer's checked text arrives as it is written
// (`delta`, the whole text so far), tool rounds as `status`, and the final reply object last (`reply`),
// which wins over the deltas. EventSource can only GET, so the stream is read from fetch.

import { ApiError } from "./telegram";

export interface StreamHandlers {
  onStatus?: (text: string) => void;
  onDelta?: (text: string) => void;
}

export interface SseEvent {
  event: string;
  data: string;
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

/** Ask the assistant and follow the stream; resolves with the final reply object. */
export async function askStream<T>(body: object, headers: Record<string, string>, handlers: StreamHandlers = {}): Promise<T> {
  const response = await fetch("/api/assistant/ask", {
    method: "POST",
    credentials: "same-origin",
    headers: { ...headers, "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body),
  });
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
    const { value, done } = await reader.read();
    if (done) break;
    for (const { event, data } of parser.push(value)) {
      const payload = JSON.parse(data);
      if (event === "status") handlers.onStatus?.(payload.text);
      else if (event === "delta") handlers.onDelta?.(payload.text);
      else if (event === "reply") return payload as T;
      else if (event === "error") throw new ApiError(500, payload.reason ?? "error", payload.field ?? undefined);
    }
  }
  throw new ApiError(502, "stream_ended");
}
