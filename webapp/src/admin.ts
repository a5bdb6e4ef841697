// The admin Mini App (/admin/miniapp): leads with filters and status changes, conversations with
// transcripts (tool calls included) and ending human mode, the funnel.

import "./style.css";
import { AdminApi, LEAD_STATUSES, type ConversationItem, type Lead, type Page, type TranscriptMessage } from "./admin-api";
import { h, replaceChildren } from "./dom";
import { ApiError, followTheme, telegramApp } from "./telegram";

const app = telegramApp();
const api = new AdminApi(app);
const root = document.getElementById("app")!;
const body = h("main", { class: "screen" });
const PER_PAGE = 20;

type View = "leads" | "conversations" | "funnel";
let view: View = "leads";
let leadPage = 1;
let conversationPage = 1;
let openConversation: number | null = null;

const filters = {
  status: h("select", { id: "filter-status" }, h("option", { value: "" }, "Все статусы"),
    ...Object.entries(LEAD_STATUSES).map(([value, label]) => h("option", { value }, label))),
  source: h("input", { id: "filter-source", placeholder: "Источник" }),
  brand: h("input", { id: "filter-brand", placeholder: "Бренд" }),
  from: h("input", { id: "filter-from", type: "date", "aria-label": "С даты" }),
  to: h("input", { id: "filter-to", type: "date", "aria-label": "По дату" }),
  q: h("input", { id: "filter-q", type: "search", placeholder: "Имя, телефон, заметка" }),
};
const handoffOnly = h("input", { id: "filter-handoff", type: "checkbox" });

function fail(error: unknown): void {
  const e = error instanceof ApiError ? error : null;
  const text =
    e?.status === 403
      ? "Нет доступа: ваш Telegram-аккаунт не входит в список администраторов."
      : e?.status === 401
        ? app
          ? "Не удалось подтвердить вход через Telegram. Закройте и снова откройте приложение."
          : "Нужен вход администратора (логин и пароль)."
        : "Не удалось загрузить данные. Попробуйте обновить страницу.";
  replaceChildren(body, h("p", { class: "notice error", id: "admin-error" }, text));
  root.querySelector("nav.tabs")?.setAttribute("hidden", "");
}

function leadQuery(): string {
  const params = new URLSearchParams({ page: String(leadPage), per_page: String(PER_PAGE) });
  const pairs: [string, string][] = [
    ["status", filters.status.value], ["source", filters.source.value.trim()], ["brand", filters.brand.value.trim()],
    ["date_from", filters.from.value], ["date_to", filters.to.value], ["q", filters.q.value.trim()],
  ];
  for (const [key, value] of pairs) if (value) params.set(key, value);
  return params.toString();
}

const when = (iso: string | null): string => (iso ? new Date(iso).toLocaleString("ru-RU", { dateStyle: "short", timeStyle: "short" }) : "—");

function pager(page: number, total: number, onPage: (page: number) => void): HTMLElement {
  const pages = Math.max(1, Math.ceil(total / PER_PAGE));
  return h("div", { class: "pager" },
    h("button", { class: "link", disabled: page <= 1, onclick: () => onPage(page - 1) }, "← Назад"),
    h("span", {}, `стр. ${page} из ${pages} · всего ${total}`),
    h("button", { class: "link", disabled: page >= pages, onclick: () => onPage(page + 1) }, "Дальше →"));
}

function leadCard(lead: Lead): HTMLElement {
  const status = h("select", { class: "lead-status", "aria-label": "Статус" },
    ...Object.entries(LEAD_STATUSES).map(([value, label]) => h("option", { value, selected: value === lead.status }, label)));
  const note = h("textarea", { class: "lead-note", rows: "2", placeholder: "Заметка менеджера" });
  note.value = lead.manager_note ?? "";
  const saved = h("span", { class: "muted" });
  const save = async (change: Record<string, string>) => {
    try {
      await api.send("PATCH", `/admin/leads/${lead.id}`, change);
      saved.textContent = "Сохранено";
    } catch (error) {
      saved.textContent = error instanceof ApiError && error.status === 403 ? "Нет доступа" : "Не сохранилось";
    }
  };
  status.addEventListener("change", () => void save({ status: status.value }));
  const profile = Object.entries(lead.profile ?? {}).map(([k, v]) => `${k}: ${v}`).join(", ");
  return h("article", { class: "card lead", "data-lead": String(lead.id) },
    h("h3", {}, `${lead.name ?? "Без имени"} · ${lead.phone}`),
    h("p", { class: "muted" }, `№${lead.id} · ${when(lead.created_at)} · ${lead.brand} · ${lead.channel}${lead.source ? ` · ${lead.source}` : ""}`),
    profile ? h("p", {}, profile) : null,
    lead.program_ids?.length ? h("p", { class: "muted" }, `Программы: ${lead.program_ids.join(", ")}`) : null,
    h("p", { class: "muted" }, `CRM: ${lead.crm_status}${lead.crm_error ? ` (${lead.crm_error})` : ""}`),
    h("div", { class: "row" }, status, saved),
    note,
    h("button", { class: "link", onclick: () => void save({ manager_note: note.value }) }, "Сохранить заметку"));
}

async function showLeads(): Promise<void> {
  const form = h("form", { class: "filters" }, ...Object.values(filters), h("button", { class: "primary", type: "submit" }, "Найти"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    leadPage = 1;
    void showLeads();
  });
  try {
    const page = await api.get<Page<Lead>>(`/admin/leads?${leadQuery()}`);
    replaceChildren(body, form,
      app ? null : h("a", { class: "link", href: `/admin/leads.csv?${leadQuery()}` }, "Выгрузить в CSV"),
      page.items.length ? h("div", { class: "cards" }, ...page.items.map(leadCard)) : h("p", { class: "muted" }, "Заявок не найдено."),
      pager(leadPage, page.total, (p) => { leadPage = p; void showLeads(); }));
  } catch (error) {
    fail(error);
  }
}

async function showConversations(): Promise<void> {
  handoffOnly.onchange = () => { conversationPage = 1; void showConversations(); };
  try {
    const page = await api.get<Page<ConversationItem>>(
      `/admin/conversations?page=${conversationPage}&per_page=${PER_PAGE}${handoffOnly.checked ? "&handoff=true" : ""}`);
    replaceChildren(body,
      h("label", { class: "check" }, handoffOnly, h("span", {}, "Только ожидающие менеджера")),
      h("div", { class: "cards" }, ...page.items.map((c) =>
        h("article", { class: "card conversation", "data-conversation": String(c.id), onclick: () => void showTranscript(c.id) },
          h("h3", {}, `${c.user?.first_name ?? "Пользователь"}${c.user?.username ? ` @${c.user.username}` : ""}`,
            c.in_human_mode ? h("span", { class: "badge" }, "у менеджера") : null),
          h("p", { class: "muted" }, `№${c.id} · ${c.brand} · ${when(c.last_message_at)}`),
          c.last_message ? h("p", {}, c.last_message.text) : null))),
      pager(conversationPage, page.total, (p) => { conversationPage = p; void showConversations(); }));
  } catch (error) {
    fail(error);
  }
}

function toolCalls(meta: Record<string, unknown>): HTMLElement | null {
  const calls = meta.tool_calls;
  return Array.isArray(calls) && calls.length
    ? h("details", { class: "tools" }, h("summary", {}, `Вызовы инструментов: ${calls.length}`), h("pre", {}, JSON.stringify(calls, null, 2)))
    : null;
}

async function showTranscript(id: number): Promise<void> {
  openConversation = id;
  syncBackButton();
  try {
    const data = await api.get<{ conversation: ConversationItem; messages: TranscriptMessage[] }>(`/admin/conversations/${id}`);
    const c = data.conversation;
    const release = h("button", { class: "primary", id: "release" }, "Вернуть диалог помощнику");
    release.addEventListener("click", async () => {
      await api.send("POST", `/admin/conversations/${id}/release`);
      void showTranscript(id);
    });
    replaceChildren(body,
      app ? null : h("button", { class: "link back", onclick: closeTranscript }, "← К списку"),
      h("h2", {}, `Диалог №${c.id}`),
      c.in_human_mode ? h("p", { class: "notice" }, `Диалог у менеджера: ${c.handoff_reason ?? "причина не указана"}`, h("br"), release) : null,
      h("div", { class: "messages transcript" }, ...data.messages.map((m) =>
        h("div", { class: `bubble bubble-${m.role === "user" ? "user" : "assistant"}` },
          h("p", { class: "muted" }, `${m.role} · ${when(m.created_at)}`), h("p", {}, m.content), toolCalls(m.meta)))));
  } catch (error) {
    fail(error);
  }
}

function closeTranscript(): void {
  openConversation = null;
  syncBackButton();
  void showConversations();
}

async function showFunnel(): Promise<void> {
  try {
    const data = await api.get<{ by_day: Record<string, unknown>[]; by_source: Record<string, unknown>[] }>("/admin/funnel");
    const columns = ["conversations", "qualified", "programs_shown", "contact_left", "crm_delivered", "tokens_per_lead"];
    const headers = ["Диалоги", "Квалиф.", "Показаны программы", "Контакт", "В CRM", "Токенов на заявку"];
    const table = (rows: Record<string, unknown>[], key: string, title: string) =>
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, title), ...headers.map((t) => h("th", {}, t)))),
        h("tbody", {}, ...rows.map((r) => h("tr", {}, h("td", {}, String(r[key])), ...columns.map((c) => h("td", {}, String(r[c] ?? "—")))))));
    replaceChildren(body, h("h2", {}, "По дням (30 дней)"), table(data.by_day, "day", "День"),
      h("h2", {}, "По источникам"), table(data.by_source, "source", "Источник"));
  } catch (error) {
    fail(error);
  }
}

function syncBackButton(): void {
  if (!app) return;
  if (openConversation !== null) app.BackButton.show();
  else app.BackButton.hide();
}

function show(next: View): void {
  view = next;
  openConversation = null;
  syncBackButton();
  const tab = (v: View, label: string) =>
    h("button", { class: v === view ? "tab tab-active" : "tab", role: "tab", "data-view": v, onclick: () => show(v) }, label);
  root.querySelector("nav.tabs")?.replaceWith(
    h("nav", { class: "tabs", role: "tablist" }, tab("leads", "Заявки"), tab("conversations", "Диалоги"), tab("funnel", "Воронка")));
  replaceChildren(body, h("p", { class: "muted" }, "Загрузка…"));
  void (view === "leads" ? showLeads() : view === "conversations" ? showConversations() : showFunnel());
}

followTheme(app);
app?.ready();
app?.expand();
app?.BackButton.onClick(closeTranscript);
root.append(h("header", { class: "admin-header" }, h("h1", {}, "Администрирование")), h("nav", { class: "tabs" }), body);
show("leads");
