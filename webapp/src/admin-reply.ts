// The admin app's answer to a client (POST /admin/conversations/{id}/messages): delivered like a message a
// manager writes in the client's topic. The answer appears in the transcript at once (optimistic) and then
// says what became of it; a failed one keeps its text and a «Повторить» that resends the same message
// (same idempotency_key), so neither a double click nor a retry reaches the client twice.

import type { WebApp } from "telegram-web-app";
import type { AdminApi } from "./admin-api";
import "./admin-reply.css";
import { h, replaceChildren } from "./dom";
import { renderText } from "./format";
import { newMessageKey } from "./message-key";
import { errorText } from "./states";
import { ApiError } from "./telegram";

/** GET /admin/conversations/{id} → answer: whether the client can be answered from here now. */
export interface AnswerState {
  allowed: boolean;
  reason: string | null;
}

/** Why the composer is closed, in the manager's words (the server's reason codes). */
export const CANNOT_ANSWER: Record<string, string> = {
  not_in_human_mode: "Сейчас диалог ведёт помощник. Ответить отсюда можно, когда клиент попросит менеджера или помощник передаст диалог.",
  client_blocked: "Клиент заблокировал бота, и ответ до него не дойдёт. Свяжитесь с ним другим способом, например по телефону из заявки.",
  relay_unavailable: "Клиент пишет в Telegram, а пересылка ответов менеджеров в бот не настроена. Ответьте ему по телефону или попросите технического администратора подключить группу менеджеров.",
  client_unknown: "Клиент не найден: возможно, он попросил удалить свои данные.",
};

/** A stored manager message's meta.delivery, for the transcript. */
export const DELIVERY_LABELS: Record<string, string> = {
  pending: "отправляется",
  delivered: "доставлено",
  waiting: "клиент увидит при следующем сообщении",
  taken: "клиент получил",
  blocked: "не доставлено: клиент заблокировал бота",
};

const SENT_NOTE: Record<string, string> = {
  delivered: "Доставлено",
  taken: "Клиент получил",
  waiting: "Сохранено: клиент увидит ответ, когда снова напишет в чат",
  pending: "Отправляется…",
};

export function deliveryText(meta: { delivery?: unknown } | null | undefined): string | null {
  const delivery = typeof meta?.delivery === "string" ? meta.delivery : null;
  return delivery ? (DELIVERY_LABELS[delivery] ?? null) : null;
}

/** «Менеджер Ирина», or just «Менеджер» when no name is known (never «Менеджер Менеджер»). */
export function managerLabel(name: string | null | undefined): string {
  const known = (name ?? "").trim();
  return known && known !== "Менеджер" ? `Менеджер ${known}` : "Менеджер";
}

/** Who answers, for the bubble shown at once: the admin's Telegram name, or «Менеджер». The server stores
 * the name of the admin it authenticated (the same Telegram user, or the browser login's account). */
export function authorName(app: WebApp | null): string {
  const user = app?.initDataUnsafe?.user;
  const name = [user?.first_name, user?.last_name].filter(Boolean).join(" ").trim();
  return name.slice(0, 128) || "Менеджер";
}

interface ComposerOptions {
  api: AdminApi;
  conversationId: number;
  answer: AnswerState;
  /** The transcript the answer is added to. */
  transcript: HTMLElement;
  author: string;
  openLink: (url: string) => void;
}

export function answerComposer(options: ComposerOptions): HTMLElement {
  const { api, conversationId, transcript, author, openLink } = options;
  const text = h("textarea", { id: "answer-text", rows: "2", maxlength: "4000", autocomplete: "off", "aria-describedby": "answer-hint" });
  const hint = h("p", { class: "hint", id: "answer-hint", role: "status" });
  const send = h("button", { class: "primary", type: "submit" }, "Отправить");
  const form = h("form", { class: "answer-form", "aria-label": "Написать клиенту" },
    h("label", { for: "answer-text" }, "Ответ клиенту"), hint, text, h("div", { class: "row" }, send));
  let sending = false;
  let closedBecause: string | null = null;

  function close(reason: string): void {
    closedBecause = reason;
    text.disabled = true;
    send.disabled = true;
    form.classList.add("answer-closed");
    hint.textContent = CANNOT_ANSWER[reason] ?? "Ответить клиенту отсюда сейчас нельзя.";
  }

  function bubble(words: string): { element: HTMLElement; status: (state: "sending" | "sent" | "failed", note: string, retry?: () => void) => void } {
    const status = h("p", { class: "bubble-status" }, "Отправляем…");
    const element = h("div", { class: "bubble bubble-manager bubble-outgoing" },
      h("p", { class: "bubble-author" }, `${managerLabel(author)} · сейчас`), ...renderText(words, openLink), status);
    transcript.append(element);
    // In view just above the composer (which sticks to the bottom), not under it.
    element.style.scrollMarginBottom = `${form.offsetHeight + 16}px`;
    element.scrollIntoView({ block: "end" });
    return {
      element,
      status: (state, note, retry) => {
        element.dataset.state = state;
        replaceChildren(status, note,
          retry ? h("button", { class: "link", type: "button", onclick: retry }, "Повторить") : null);
        if (state === "failed") element.scrollIntoView({ block: "end" }); // «Повторить» in view
      },
    };
  }

  async function deliver(words: string, key: string, shown: ReturnType<typeof bubble>): Promise<void> {
    sending = true;
    send.disabled = true;
    shown.status("sending", "Отправляем…");
    try {
      const result = await api.send<{ delivery: string }>("POST", `/admin/conversations/${conversationId}/messages`,
        { text: words, idempotency_key: key }); // who answers is the server's: the signed-in admin
      if (result.delivery === "blocked") {
        shown.status("failed", "Не доставлено: клиент заблокировал бота.");
        close("client_blocked");
      } else {
        shown.status("sent", SENT_NOTE[result.delivery] ?? "Отправлено");
      }
    } catch (error) {
      const reason = error instanceof ApiError && error.status === 403 ? "Не отправлено: нет доступа." : errorText(error, "отправить ответ");
      shown.status("failed", reason, () => {
        if (!sending) void deliver(words, key, shown); // the same message again: the server sends it once
      });
    } finally {
      sending = false;
      send.disabled = closedBecause !== null;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (sending || closedBecause) return; // a double click sends once
    const words = text.value.trim();
    if (!words) {
      hint.textContent = "Напишите ответ: пустое сообщение не отправить.";
      text.focus();
      return;
    }
    hint.textContent = "";
    text.value = "";
    void deliver(words, newMessageKey(), bubble(words));
  });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  if (!options.answer.allowed) close(options.answer.reason ?? "");
  else text.placeholder = "Клиент получит ответ в чате с ботом";
  return form;
}
