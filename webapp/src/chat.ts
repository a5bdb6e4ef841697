// The chat tab: the same assistant as in the bot (POST /api/assistant/ask with initData), continuing the
// same conversation (GET /api/assistant/history). Silent replies draw nothing; ask_contact offers the
// phone from Telegram or the lead form; handoff says where the manager's answer will arrive.
// Replies stream (ask-stream.ts): a typing indicator (with the tool round's status) until the first
// checked sentence, then a bubble that grows; the final reply replaces it with the full reply (buttons,
// program cards). Each message carries its own key, so a retry never makes a second turn.

import type { WebApp } from "telegram-web-app";
import { askLive } from "./ask-stream";
import { renderCards, type ProgramCard } from "./cards";
import "./chat-live.css";
import { h, replaceChildren } from "./dom";
import { renderText } from "./format";
import { newMessageKey } from "./message-key";
import { errorView, loadingView } from "./states";
import { ApiError, haptic, openExternal, requestJson } from "./telegram";

type Role = "user" | "assistant" | "manager";
type ActionCode = "ask_contact" | "handoff" | "open_miniapp";

interface QuickReply {
  label: string;
  payload: string;
}

interface AssistantReply {
  ok: boolean;
  text: string;
  quick_replies?: QuickReply[];
  cards?: ProgramCard[];
  actions?: ActionCode[];
  silent?: boolean;
  // What managers wrote since the last request (the manager relay): drawn as the manager's own bubbles.
  manager_messages?: { text: string; manager_name?: string | null }[];
}

interface HistoryMessage {
  role: Role;
  text: string;
  cards: ProgramCard[];
  quick_replies: QuickReply[];
  actions: ActionCode[];
}

export interface ChatHooks {
  /** Open the lead form (the assistant asked for a contact, or a card's «Записаться»). */
  openLeadForm: (programId?: string) => void;
  /** Where a plain-browser visitor can write instead (the bot's link and the school's phone). */
  outside: () => HTMLElement;
}

const GREETING = "Здравствуйте! Я виртуальный помощник школы. Спросите о курсах, ценах, расписании или пробном занятии.";
const SILENT_NOTE = "Сообщение передано менеджеру — он ответит в чате с ботом в Telegram.";
const HANDOFF_NOTE = "Мини-приложение можно закрыть: ответ менеджера придёт в чат с ботом.";
const RESERVED = /^\[.*\]$|^\/start$/; // stored descriptions of buttons and commands, not words to show

export function mountChat(pane: HTMLElement, app: WebApp | null, brand: string, hooks: ChatHooks): void {
  if (!app) {
    replaceChildren(pane, hooks.outside());
    return;
  }
  const tg = app;
  const log = h("div", { class: "messages", role: "log", "aria-live": "polite", "aria-label": "Переписка с помощником" });
  const input = h("textarea", { id: "chat-input", rows: "1", maxlength: "4000", autocomplete: "off", "aria-label": "Ваш вопрос", placeholder: "Ваш вопрос" });
  const sendButton = h("button", { class: "primary send", type: "submit", "aria-label": "Отправить" }, "Отправить");
  const form = h("form", { class: "chat-form" }, input, sendButton);
  const managerButton = h("button", { class: "secondary small", type: "button", onclick: () => void send("Позвать менеджера", "handoff") }, "Позвать менеджера");
  let handoffNoted = false;
  let busy = false; // one message at a time: a second Enter or button press while answering is ignored

  const scrollToEnd = () => log.lastElementChild?.scrollIntoView({ block: "end" });
  const auth = { Authorization: `tma ${tg.initData}` };

  /** Only the newest reply's quick replies can be pressed: older ones belonged to another question. */
  function retireQuickReplies(): void {
    for (const button of log.querySelectorAll<HTMLButtonElement>(".quick button")) {
      button.disabled = true;
      button.setAttribute("aria-disabled", "true");
    }
  }

  function bubble(role: Role, ...content: (Node | string | null)[]): HTMLElement {
    const label = role === "manager" ? h("p", { class: "bubble-author" }, "Менеджер") : null;
    const element = h("div", { class: `bubble bubble-${role}` }, label, ...content);
    log.append(element);
    return element;
  }

  function note(text: string): void {
    log.append(h("p", { class: "chat-note" }, text));
  }

  function actionRow(actions: ActionCode[]): HTMLElement | null {
    if (actions.includes("ask_contact")) {
      return h("div", { class: "quick chat-actions" },
        tg.isVersionAtLeast("6.9") ? h("button", { class: "option", type: "button", onclick: shareContact }, "Поделиться номером") : null,
        h("button", { class: "option", type: "button", onclick: () => hooks.openLeadForm() }, "Заполнить заявку"));
    }
    if (actions.includes("handoff") && !handoffNoted) {
      handoffNoted = true;
      return h("div", { class: "chat-actions" },
        h("p", { class: "chat-note" }, HANDOFF_NOTE),
        h("button", { class: "secondary", type: "button", onclick: () => tg.close() }, "Перейти в чат с ботом"));
    }
    return null;
  }

  function drawAssistant(text: string, cards: ProgramCard[], quick: QuickReply[], actions: ActionCode[], role: Role = "assistant"): HTMLElement {
    const cardList = cards.length
      ? renderCards(cards, { onOpen: (url) => openExternal(tg, url), onPick: (card) => hooks.openLeadForm(card.id) })
      : null;
    const buttons = quick.length
      ? h("div", { class: "quick" }, ...quick.map((q) => h("button", { class: "option", type: "button", title: q.label, onclick: () => void send(q.label, q.payload) }, q.label)))
      : null;
    return bubble(role, ...renderText(text, (url) => openExternal(tg, url)), cardList, buttons, actionRow(actions));
  }

  function drawUser(text: string): void {
    if (RESERVED.test(text.trim())) return;
    bubble("user", ...renderText(text, (url) => openExternal(tg, url)));
  }

  function shareContact(): void {
    tg.requestContact((shared, response) => {
      const phone = (response as { responseUnsafe?: { contact?: { phone_number?: string } } } | undefined)?.responseUnsafe?.contact?.phone_number;
      if (shared && phone) void send(phone.startsWith("+") ? phone : `+${phone}`);
      else if (shared) note("Спасибо! Номер отправлен в чат с ботом — ответ придёт туда.");
      else note("Номер не отправлен. Можно написать его сообщением или заполнить заявку.");
    });
  }

  /** Send typed text, or a quick reply: its label is shown, its payload goes to the assistant as a choice. */
  async function send(text: string, choice?: string): Promise<void> {
    const message = text.trim();
    if (!message || busy) return;
    retireQuickReplies();
    drawUser(message);
    if (!choice) input.value = "";
    await ask(choice ? { choice, brand } : { message, brand }, newMessageKey());
  }

  /** The typing indicator: three dots and what the assistant is doing («Подбираю программы…»). */
  function typingIndicator(): { element: HTMLElement; status: (text: string) => void } {
    const words = h("span", { class: "typing-text" }, "Помощник печатает…");
    const element = h("div", { class: "bubble typing", role: "status" },
      h("span", { class: "typing-dots", "aria-hidden": "true" }, h("span", {}), h("span", {}), h("span", {})), words);
    return { element, status: (text) => { words.textContent = text; } };
  }

  /** One message to the assistant, streamed; ``key`` stays the same on a retry (no second turn). */
  async function ask(request: { message?: string; choice?: string; brand: string }, key: string): Promise<void> {
    busy = true;
    sendButton.disabled = true;
    managerButton.disabled = true; // pressed mid-answer it would be lost: it waits for the answer
    const typing = typingIndicator();
    log.append(typing.element);
    scrollToEnd();
    let live: HTMLElement | null = null; // the growing bubble: checked text only (the server's deltas)
    const clearLive = () => {
      typing.element.remove();
      live?.remove();
      live = null;
    };
    try {
      const reply = await askLive<AssistantReply>({ ...request, idempotency_key: key }, auth, {
        onStatus: (text) => typing.status(text),
        onDelta: (text) => {
          if (!live) {
            live = h("div", { class: "bubble bubble-assistant bubble-live", "aria-busy": "true" });
            typing.element.replaceWith(live);
          }
          replaceChildren(live, ...renderText(text, (url) => openExternal(tg, url)));
          scrollToEnd();
        },
      });
      const place = live ?? typing.element;
      const anchor = h("span", { hidden: true });
      place.replaceWith(anchor); // the final reply goes where the live text was
      clearLive();
      const drawn: HTMLElement[] = [];
      for (const words of reply.manager_messages ?? []) drawn.push(drawAssistant(words.text, [], [], [], "manager"));
      if (reply.silent || !reply.text.trim()) {
        if (reply.actions?.includes("handoff")) note(SILENT_NOTE);
      } else {
        drawn.push(drawAssistant(reply.text, reply.cards ?? [], reply.quick_replies ?? [], reply.actions ?? []));
      }
      anchor.replaceWith(...drawn);
    } catch (error) {
      clearLive();
      haptic(tg, "error");
      const limited = error instanceof ApiError && error.status === 429;
      const failure = errorView(error, limited ? null : () => { failure.remove(); void ask(request, key); }, "получить ответ");
      log.append(failure);
    } finally {
      busy = false;
      sendButton.disabled = false;
      managerButton.disabled = false;
      scrollToEnd();
    }
  }

  async function loadHistory(): Promise<void> {
    replaceChildren(log, loadingView("Загружаем переписку…"));
    try {
      const { messages } = await requestJson<{ messages: HistoryMessage[] }>(`/api/assistant/history?brand=${encodeURIComponent(brand)}`, { headers: auth });
      replaceChildren(log);
      if (!messages.length) bubble("assistant", h("p", {}, GREETING));
      messages.forEach((m, i) => {
        if (m.role === "user") drawUser(m.text);
        else drawAssistant(m.text, m.cards, i === messages.length - 1 ? m.quick_replies : [], m.actions, m.role);
      });
      scrollToEnd();
    } catch (error) {
      replaceChildren(log, errorView(error, () => void loadHistory(), "загрузить переписку"));
    }
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void send(input.value);
  });
  replaceChildren(pane, h("div", { class: "chat-toolbar" }, managerButton), log, form);
  void loadHistory();
}
