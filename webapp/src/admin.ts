// The admin Mini App (/admin/miniapp): leads (filters, status, note, tap-to-call, CSV), conversations with
// transcripts (cards shown, tools called), answering the client (admin-reply.ts) and ending human mode,
// the funnel drawn as charts, and the consent records (withdrawals with the CRM requests a manager must
// remove by hand).
// Errors are shown inline under the controls, which keep what the admin typed.

import "./style.css";
import type { WebApp } from "telegram-web-app";
import { answerComposer, authorName, deliveryText, managerLabel, type AnswerState } from "./admin-reply";
import { AdminApi, LEAD_STATUSES, type ConsentItem, type ConversationItem, type Funnel, type FunnelRow, type Lead, type Page, type TranscriptMessage } from "./admin-api";
import { barsChart, funnelChart, type Stage } from "./charts";
import { h, replaceChildren } from "./dom";
import { renderText } from "./format";
import { loadBrand } from "./brand";
import { CHANNEL_LABELS, CONSENT_EVENT_LABELS, CONSENT_KIND_LABELS, CRM_LABELS, ROLE_LABELS, SOURCE_LABELS, TOOL_LABELS, day, label, profileText, storedUserText, when } from "./labels";
import { emptyView, errorText, loadingView } from "./states";
import { ApiError, Latest, followTheme, mainButton, openExternal, telegramReady } from "./telegram";

const PER_PAGE = 20;
const root = document.getElementById("app")!;
const body = h("main", { class: "screen", id: "admin-body", role: "tabpanel" });
const loads = new Latest();

type View = "leads" | "conversations" | "funnel" | "consents";
let app: WebApp | null = null;
let api: AdminApi;
let view: View = "leads";
let leadPage = 1;
let conversationPage = 1;
let consentPage = 1;
let openConversation: number | null = null;

function field(id: string, text: string, control: HTMLElement): HTMLElement {
  return h("div", { class: "field" }, h("label", { for: id }, text), control);
}

const filters = {
  status: h("select", { id: "filter-status" }, h("option", { value: "" }, "Все статусы"),
    ...Object.entries(LEAD_STATUSES).map(([value, text]) => h("option", { value }, text))),
  source: h("input", { id: "filter-source", autocomplete: "off" }),
  brand: h("input", { id: "filter-brand", autocomplete: "off" }),
  from: h("input", { id: "filter-from", type: "date" }),
  to: h("input", { id: "filter-to", type: "date" }),
  q: h("input", { id: "filter-q", type: "search", autocomplete: "off" }),
};
const filterBox = h("details", { class: "filters-box" }, h("summary", {}, "Фильтры"),
  h("form", { class: "filters", id: "lead-filters" },
    field("filter-q", "Имя, телефон или заметка", filters.q),
    field("filter-status", "Статус", filters.status),
    field("filter-source", "Источник", filters.source),
    field("filter-brand", "Бренд", filters.brand),
    field("filter-from", "С даты", filters.from),
    field("filter-to", "По дату", filters.to),
    h("button", { class: "primary", type: "submit" }, "Найти")));
filterBox.querySelector("form")!.addEventListener("submit", (event) => {
  event.preventDefault();
  leadPage = 1;
  void showLeads();
});
const handoffOnly = h("input", { id: "filter-handoff", type: "checkbox" });
const consentEvent = h("select", { id: "filter-consent" }, h("option", { value: "" }, "Все записи"),
  ...Object.entries(CONSENT_EVENT_LABELS).map(([value, text]) => h("option", { value }, text)));
const funnelFrom = h("input", { id: "funnel-from", type: "date" });
const funnelTo = h("input", { id: "funnel-to", type: "date" });

/** The whole app cannot work (no access): the tabs go, the reason stays. */
function fatal(error: ApiError): void {
  const text = error.status === 403
    ? "Нет доступа: ваш Telegram-аккаунт не входит в список администраторов."
    : app ? "Не удалось подтвердить вход через Telegram. Закройте и снова откройте приложение." : "Нужен вход администратора (логин и пароль).";
  replaceChildren(body, h("p", { class: "notice error", id: "admin-error", role: "alert" }, text));
  root.querySelector("nav.tabs")?.setAttribute("hidden", "");
}

/** A failed load: shown under the controls (filters keep their values), with a retry; 401/403 are fatal. */
function inlineError(target: HTMLElement, error: unknown, retry: () => void): void {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return fatal(error);
  const problem = error instanceof ApiError && error.status === 422 ? "Проверьте фильтры: такие даты не подходят (не раньше 2000 года, «с» не позже «по»)." : errorText(error);
  replaceChildren(target, h("div", { class: "notice error", id: "admin-error", role: "alert" }, h("p", {}, problem),
    h("button", { class: "secondary", type: "button", onclick: retry }, "Повторить")));
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

function pager(page: number, total: number, onPage: (page: number) => void): HTMLElement {
  const pages = Math.max(1, Math.ceil(total / PER_PAGE));
  return h("nav", { class: "pager", "aria-label": "Страницы" },
    h("button", { class: "link", type: "button", disabled: page <= 1, onclick: () => onPage(page - 1) }, "← Назад"),
    h("span", {}, `стр. ${page} из ${pages} · всего ${total}`),
    h("button", { class: "link", type: "button", disabled: page >= pages, onclick: () => onPage(page + 1) }, "Дальше →"));
}

function leadCard(lead: Lead): HTMLElement {
  const statusId = `status-${lead.id}`;
  const noteId = `note-${lead.id}`;
  const status = h("select", { class: "lead-status", id: statusId },
    ...Object.entries(LEAD_STATUSES).map(([value, text]) => h("option", { value, selected: value === lead.status }, text)));
  const note = h("textarea", { class: "lead-note", id: noteId, rows: "2" });
  note.value = lead.manager_note ?? "";
  const saved = h("span", { class: "hint", role: "status" });
  const save = async (change: Record<string, string>) => {
    saved.textContent = "Сохраняем…";
    try {
      await api.send("PATCH", `/admin/leads/${lead.id}`, change);
      saved.textContent = "Сохранено";
    } catch (error) {
      saved.textContent = error instanceof ApiError && error.status === 403 ? "Нет доступа" : `Не сохранилось: ${errorText(error, "сохранить")}`;
    }
  };
  status.addEventListener("change", () => void save({ status: status.value }));
  const profile = profileText(lead.profile);
  const programs = (lead.programs ?? lead.program_ids.map((id) => ({ id, title: id }))).map((p) => p.title);
  const crm = label(CRM_LABELS, lead.crm_status) + (lead.crm_error ? ` (${lead.crm_error})` : "");
  const source = lead.source && lead.source !== lead.channel ? ` · ${label(SOURCE_LABELS, lead.source)}` : "";
  return h("article", { class: "card lead", "data-lead": String(lead.id) },
    h("h3", {}, lead.name ?? "Без имени"),
    lead.phone
      ? h("p", {}, h("a", { class: "phone", href: `tel:${lead.phone}` }, lead.phone))
      : h("p", { class: "hint" }, "Телефон удалён: клиент отозвал согласие"),
    h("p", { class: "hint" }, `№${lead.id} · ${when(lead.created_at)} · ${label(CHANNEL_LABELS, lead.channel)}${source}`),
    profile ? h("p", {}, profile) : null,
    programs.length ? h("p", {}, `Программы: ${programs.join(", ")}`) : null,
    h("p", { class: "hint" }, crm),
    h("div", { class: "row" }, h("label", { for: statusId }, "Статус"), status, saved),
    h("label", { for: noteId }, "Заметка менеджера"),
    note,
    h("button", { class: "secondary", type: "button", onclick: () => void save({ manager_note: note.value }) }, "Сохранить заметку"));
}

async function exportCsv(): Promise<void> {
  const query = leadQuery();
  if (!app) {
    location.href = `/admin/leads.csv?${query}`;
    return;
  }
  // The phone's browser downloads the file and has no initData: a link signed for a few minutes.
  const { url } = await api.send<{ url: string }>("POST", `/admin/leads.csv/link?${query}`);
  openExternal(app, new URL(url, location.href).href);
}

async function showLeads(): Promise<void> {
  const signal = loads.next();
  const results = h("div", { class: "results" }, loadingView());
  const csvStatus = h("span", { class: "hint csv-status", role: "status" });
  const csv = h("button", { class: "secondary", type: "button", onclick: () => {
    csvStatus.textContent = "";
    exportCsv().catch((error) => { csvStatus.textContent = errorText(error, "подготовить файл"); });
  } }, "Выгрузить в CSV");
  // Inside Telegram the MainButton exports; a browser gets the button on the page.
  replaceChildren(body, filterBox, app ? csvStatus : h("div", { class: "row" }, csv, csvStatus), results);
  try {
    const page = await api.get<Page<Lead>>(`/admin/leads?${leadQuery()}`, signal);
    replaceChildren(results,
      page.items.length ? h("div", { class: "cards" }, ...page.items.map(leadCard)) : emptyView("Заявок не найдено."),
      pager(leadPage, page.total, (p) => { leadPage = p; void showLeads(); }));
  } catch (error) {
    if (!signal.aborted) inlineError(results, error, () => void showLeads());
  }
}

function conversationTitle(c: ConversationItem): string {
  return `${c.user?.first_name ?? "Пользователь"}${c.user?.username ? ` @${c.user.username}` : ""}`;
}

async function showConversations(): Promise<void> {
  const signal = loads.next();
  handoffOnly.onchange = () => { conversationPage = 1; void showConversations(); };
  const results = h("div", { class: "results" }, loadingView());
  replaceChildren(body, h("div", { class: "check" }, handoffOnly, h("label", { for: "filter-handoff" }, "Только ожидающие менеджера")), results);
  try {
    const page = await api.get<Page<ConversationItem>>(
      `/admin/conversations?page=${conversationPage}&per_page=${PER_PAGE}${handoffOnly.checked ? "&handoff=true" : ""}`, signal);
    replaceChildren(results,
      page.items.length ? h("ul", { class: "cards plain-list" }, ...page.items.map((c) => h("li", {},
        h("button", { class: "card conversation", type: "button", "data-conversation": String(c.id), onclick: () => void showTranscript(c.id) },
          h("span", { class: "card-title" }, conversationTitle(c), c.in_human_mode ? h("span", { class: "badge" }, "у менеджера") : null),
          h("span", { class: "hint" }, `№${c.id} · ${when(c.last_message_at)}${c.user?.source ? ` · ${label(SOURCE_LABELS, c.user.source)}` : ""}`),
          c.last_message ? h("span", { class: "preview" }, c.last_message.text) : null)))) : emptyView("Диалогов нет."),
      pager(conversationPage, page.total, (p) => { conversationPage = p; void showConversations(); }));
  } catch (error) {
    if (!signal.aborted) inlineError(results, error, () => void showConversations());
  }
}

function turnDetails(m: TranscriptMessage): HTMLElement | null {
  if (!m.cards.length && !m.tool_calls.length) return null;
  return h("div", { class: "tools" },
    m.cards.length ? h("p", {}, `Показаны программы: ${m.cards.map((c) => c.title).join(", ")}`) : null,
    m.tool_calls.length ? h("p", {}, `Вызовы инструментов: ${m.tool_calls.length} — ${m.tool_calls.map((t) => label(TOOL_LABELS, t)).join(", ")}`) : null);
}

async function showTranscript(id: number): Promise<void> {
  openConversation = id;
  syncButtons();
  const signal = loads.next();
  replaceChildren(body, loadingView("Загружаем диалог…"));
  try {
    const data = await api.get<{ conversation: ConversationItem; messages: TranscriptMessage[]; answer?: AnswerState }>(`/admin/conversations/${id}`, signal);
    const c = data.conversation;
    const releaseStatus = h("p", { class: "hint", role: "status" });
    const release = h("button", { class: "primary", id: "release", type: "button" }, "Вернуть диалог помощнику");
    release.addEventListener("click", async () => {
      release.disabled = true;
      releaseStatus.textContent = "Возвращаем…";
      try {
        await api.send("POST", `/admin/conversations/${id}/release`);
        void showTranscript(id);
      } catch (error) {
        release.disabled = false;
        releaseStatus.textContent = `Не получилось: ${errorText(error, "вернуть диалог")}`;
      }
    });
    const transcript = h("div", { class: "messages transcript" }, ...data.messages.map((m) => {
      const delivery = m.role === "manager" ? deliveryText(m.meta) : null;
      return h("div", { class: `bubble bubble-${m.role === "user" ? "user" : m.role === "manager" ? "manager" : "assistant"}` },
        h("p", { class: "bubble-author" }, `${m.role === "manager" ? managerLabel(m.meta?.manager_name) : label(ROLE_LABELS, m.role)} · ${when(m.created_at)}${delivery ? ` · ${delivery}` : ""}`),
        ...renderText(m.role === "user" ? storedUserText(m.content) : m.content || "—", (url) => openExternal(app, url)),
        turnDetails(m));
    }));
    const answer = data.answer ?? { allowed: false, reason: null };
    replaceChildren(body,
      app ? null : h("button", { class: "link back", type: "button", onclick: closeTranscript }, "← К списку"),
      h("h2", {}, `Диалог №${c.id}`),
      h("p", { class: "hint" }, conversationTitle(c), profileText(c.profile) ? ` · ${profileText(c.profile)}` : ""),
      c.in_human_mode ? h("div", { class: "notice" }, h("p", {}, `Диалог у менеджера: ${c.handoff_reason ?? "причина не указана"}`), release, releaseStatus) : null,
      transcript,
      answerComposer({ api, conversationId: c.id, answer, transcript, author: authorName(app), openLink: (url) => openExternal(app, url) }));
  } catch (error) {
    if (!signal.aborted) inlineError(body, error, () => void showTranscript(id));
  }
}

function closeTranscript(): void {
  openConversation = null;
  syncButtons();
  void showConversations();
}

const STAGES: [keyof FunnelRow, string][] = [
  ["conversations", "Диалоги"], ["qualified", "Квалифицированы"], ["programs_shown", "Показаны программы"],
  ["contact_left", "Оставили контакт"], ["crm_delivered", "Переданы в CRM"],
];

const stagesOf = (row: FunnelRow): Stage[] => STAGES.map(([key, text]) => ({ label: text, value: Number(row[key] ?? 0) }));

function funnelTable(rows: FunnelRow[], key: "day" | "source", title: string): HTMLElement {
  return h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": title },
    h("table", {}, h("caption", {}, title),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, key === "day" ? "День" : "Источник"), ...STAGES.map(([, text]) => h("th", { scope: "col" }, text)), h("th", { scope: "col" }, "Токенов на заявку"))),
      h("tbody", {}, ...rows.map((r) => h("tr", {},
        h("th", { scope: "row" }, key === "day" ? day(String(r.day)) : label(SOURCE_LABELS, String(r.source))),
        ...STAGES.map(([stage]) => h("td", {}, String(r[stage] ?? 0))),
        h("td", {}, r.tokens_per_lead === null ? "—" : String(r.tokens_per_lead)))))));
}

async function showFunnel(): Promise<void> {
  const signal = loads.next();
  const results = h("div", { class: "results" }, loadingView());
  const form = h("form", { class: "filters", id: "funnel-filters" },
    field("funnel-from", "С даты", funnelFrom), field("funnel-to", "По дату", funnelTo),
    h("button", { class: "primary", type: "submit" }, "Показать"));
  form.addEventListener("submit", (event) => { event.preventDefault(); void showFunnel(); });
  replaceChildren(body, form, results);
  const params = new URLSearchParams();
  if (funnelFrom.value) params.set("date_from", funnelFrom.value);
  if (funnelTo.value) params.set("date_to", funnelTo.value);
  try {
    const data = await api.get<Funnel>(`/admin/funnel?${params}`, signal);
    if (!data.totals.conversations) return replaceChildren(results, emptyView("За этот период диалогов не было."));
    const sourcePick = h("select", { id: "funnel-source" }, h("option", { value: "" }, "Все источники"),
      ...data.by_source.map((r) => h("option", { value: String(r.source) }, label(SOURCE_LABELS, String(r.source)))));
    const chartSlot = h("div", {}, funnelChart(stagesOf(data.totals), "Воронка за период, % — от предыдущего этапа"));
    sourcePick.addEventListener("change", () => {
      const row = data.by_source.find((r) => r.source === sourcePick.value);
      replaceChildren(chartSlot, funnelChart(stagesOf(row ?? data.totals), `Воронка: ${row ? label(SOURCE_LABELS, String(row.source)) : "все источники"}, % — от предыдущего этапа`));
    });
    replaceChildren(results,
      h("h2", {}, `Воронка ${day(data.date_from)} — ${day(data.date_to)}`),
      field("funnel-source", "Источник", sourcePick),
      chartSlot,
      h("h2", {}, "Заявки по дням"),
      barsChart(data.by_day.map((r) => ({ label: day(String(r.day)), value: r.contact_left })), "Оставили контакт, по дню начала диалога"),
      funnelTable(data.by_day, "day", "По дням"),
      funnelTable(data.by_source, "source", "По источникам"));
  } catch (error) {
    if (!signal.aborted) inlineError(results, error, () => void showFunnel());
  }
}

function consentCard(item: ConsentItem): HTMLElement {
  const who = item.identity === "telegram" ? `Telegram id ${item.external_id}` : `${item.identity}: ${item.external_id}`;
  const crm = item.crm_leads ?? [];
  return h("article", { class: "card consent", "data-consent": String(item.id) },
    h("h3", {}, label(CONSENT_EVENT_LABELS, item.event),
      item.event === "withdrawn" ? h("span", { class: "badge" }, "данные удалены") : null),
    h("p", { class: "hint" }, `${when(item.created_at)} · ${label(CHANNEL_LABELS, item.channel)} · ${label(CONSENT_KIND_LABELS, item.kind)}`),
    h("p", {}, `Пользователь №${item.user_id} · ${who} · текст согласия от ${item.text_version}`),
    crm.length
      ? h("p", { class: "notice" }, `Уже в CRM: ${crm.map((l) => `заявка №${l.lead_id}${l.crm_id ? ` (CRM ${l.crm_id})` : ""}`).join(", ")}. `
        + "Удалите или обезличьте эту запись в CRM в течение 30 дней, если с семьёй нет договора.")
      : null);
}

async function showConsents(): Promise<void> {
  const signal = loads.next();
  consentEvent.onchange = () => { consentPage = 1; void showConsents(); };
  const results = h("div", { class: "results" }, loadingView());
  replaceChildren(body, field("filter-consent", "Записи", consentEvent), results);
  const params = new URLSearchParams({ page: String(consentPage), per_page: String(PER_PAGE) });
  if (consentEvent.value) params.set("event", consentEvent.value);
  try {
    const page = await api.get<Page<ConsentItem>>(`/admin/consents?${params}`, signal);
    replaceChildren(results,
      page.items.length ? h("div", { class: "cards" }, ...page.items.map(consentCard)) : emptyView("Записей о согласии нет."),
      pager(consentPage, page.total, (p) => { consentPage = p; void showConsents(); }));
  } catch (error) {
    if (!signal.aborted) inlineError(results, error, () => void showConsents());
  }
}

function syncButtons(): void {
  if (!app) return;
  if (openConversation !== null) app.BackButton.show();
  else app.BackButton.hide();
  if (view === "leads" && openConversation === null) {
    mainButton(app, { text: "Выгрузить в CSV", onClick: () => void exportCsv().catch((error) => {
      const status = body.querySelector<HTMLElement>(".csv-status");
      if (status) status.textContent = errorText(error, "подготовить файл");
    }) });
  }
  else mainButton(app, null);
}

function show(next: View): void {
  view = next;
  openConversation = null;
  const tab = (v: View, text: string) => h("button", { class: v === view ? "tab tab-active" : "tab", role: "tab", type: "button",
    "aria-selected": String(v === view), "aria-controls": "admin-body", "data-view": v, onclick: () => show(v) }, text);
  root.querySelector("nav.tabs")?.replaceWith(
    h("nav", { class: "tabs", role: "tablist", "aria-label": "Разделы" }, tab("leads", "Заявки"), tab("conversations", "Диалоги"), tab("funnel", "Воронка"),
      tab("consents", "Согласия")));
  syncButtons();
  const screens: Record<View, () => Promise<void>> = { leads: showLeads, conversations: showConversations, funnel: showFunnel, consents: showConsents };
  void screens[view]();
}

async function start(): Promise<void> {
  const brandLoad = loadBrand("");
  app = await telegramReady();
  api = new AdminApi(app);
  followTheme(app);
  app?.ready();
  app?.expand();
  app?.BackButton.onClick(closeTranscript);
  root.replaceChildren(
    h("header", { class: "brand-header" }, h("p", { class: "brand-name" }, "Онлайн-помощник школы"), h("h1", {}, "Администрирование")),
    h("nav", { class: "tabs", hidden: true }), body);
  show("leads");
  const brand = await brandLoad;
  if (brand) root.querySelector(".brand-name")!.textContent = brand.name;
}

void start();
