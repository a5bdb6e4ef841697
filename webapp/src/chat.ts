// The chat tab: the same assistant as in the bot, through POST /api/assistant/ask with initData.

import type { WebApp } from "telegram-web-app";
import { renderCards, type ProgramCard } from "./cards";
import { h, replaceChildren } from "./dom";
import { askStream } from "./ask-stream";
import { liveBubble } from "./live-bubble";
import { ApiError, openExternal } from "./telegram";

interface AssistantReply {
  ok: boolean;
  text: string;
  quick_replies?: { label: string; payload: string }[];
  cards?: ProgramCard[];
}

export function mountChat(pane: HTMLElement, app: WebApp | null, brand: string): void {
  if (!app) {
    replaceChildren(pane, h("p", { class: "notice" }, "Чат с помощником работает внутри Telegram: откройте нашего бота и отправьте /app."));
    return;
  }
  const log = h("div", { class: "messages", "aria-live": "polite" });
  const input = h("input", { id: "chat-input", placeholder: "Задайте вопрос о курсах", maxlength: "4000", autocomplete: "off" });
  const sendButton = h("button", { class: "primary", type: "submit" }, "Отправить");
  const form = h("form", { class: "chat-form" }, input, sendButton);

  const bubble = (role: "user" | "assistant", ...content: (Node | string | null)[]) =>
    log.append(h("div", { class: `bubble bubble-${role}` }, ...content));

  /** Send typed text, or a quick reply: its label is shown, its payload goes to the assistant as a choice. */
  async function send(text: string, choice?: string): Promise<void> {
    const message = text.trim();
    if (!message) return;
    bubble("user", message);
    input.value = "";
    sendButton.disabled = true;
    // The answer is streamed: typing dots, then the text as it is written; the final reply replaces it.
    const live = liveBubble();
    log.append(live.element);
    live.element.scrollIntoView({ block: "end" });
    try {
      const reply = await askStream<AssistantReply>(choice ? { choice, brand } : { message, brand }, { Authorization: `tma ${app!.initData}` }, {
        onStatus: live.status,
        onDelta: (text) => {
          live.text(text);
          live.element.scrollIntoView({ block: "end" });
        },
      });
      const quick = reply.quick_replies?.length
        ? h("div", { class: "quick" }, ...reply.quick_replies.map((q) => h("button", { class: "option", onclick: () => void send(q.label, q.payload) }, q.label)))
        : null;
      const cards = reply.cards?.length ? renderCards(reply.cards, { onOpen: (url) => openExternal(app, url) }) : null;
      live.finish(h("p", {}, reply.text), cards, quick);
    } catch (error) {
      const limited = error instanceof ApiError && error.status === 429;
      live.finish(limited ? "Вы отправляете сообщения слишком часто — подождите минуту, пожалуйста." : "Не получилось получить ответ. Попробуйте ещё раз чуть позже.");
    } finally {
      sendButton.disabled = false;
      log.lastElementChild?.scrollIntoView({ block: "end" });
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void send(input.value);
  });
  bubble("assistant", "Здравствуйте! Я виртуальный помощник школы. Спросите о курсах, ценах, расписании или пробном занятии.");
  replaceChildren(pane, log, form);
}
