// A client's own id for one message (the server's idempotency_key): sending it again (a retry after a
// dropped connection, a double click) is the same message, not a new one. Used by the chat and the admin
// app's answer to a client.

export function newMessageKey(): string {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes); // randomUUID needs a secure context; getRandomValues does not
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
