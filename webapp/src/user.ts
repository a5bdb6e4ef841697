// The user Mini App (/app): qualification steps, the top-3 programs, the lead form and a chat tab.

import "./style.css";
import type { WebApp } from "telegram-web-app";
import { loadBrand, outsideNotice, outsidePanel, type BrandInfo } from "./brand";
import { renderCards, type ProgramCard } from "./cards";
import { mountChat } from "./chat";
import { h, replaceChildren } from "./dom";
import { profileText } from "./labels";
import { LEAD_FIELDS, PHONE_ERROR, validateLeadForm, type LeadField, type LeadFormErrors } from "./phone";
import { emptyView, errorText, errorView, loadingView } from "./states";
import {
  QUESTIONS, back, canGoBack, choose, initialState, isQuestion, leadFromChat, leadProfile, leadSent, optionsFor,
  proceedToLead, searchQuery, summary, type FlowState,
} from "./steps";
import { ApiError, Latest, followTheme, haptic, isAbort, mainButton, openExternal, requestJson, telegramReady } from "./telegram";

interface SearchAnswer {
  ok: boolean;
  items: ProgramCard[];
}

interface LeadAnswer {
  ok: boolean;
  lead_id: number;
  duplicate: boolean;
  programs: { id: string; title: string }[];
  profile: Record<string, unknown>;
  confirmation_sent: boolean;
}

const brand = new URLSearchParams(location.search).get("brand") ?? "kmipt";
const root = document.getElementById("app")!;
const screen = h("main", { class: "screen", id: "flow", role: "tabpanel", "aria-labelledby": "tab-flow" });
const chatPane = h("section", { class: "chat", id: "chat", role: "tabpanel", "aria-labelledby": "tab-chat", hidden: true });
const offlineBanner = h("p", { class: "notice offline-banner", role: "status", hidden: true }, "Нет соединения с интернетом — покажем данные, как только связь вернётся.");
const searches = new Latest();

let app: WebApp | null = null;
let brandInfo: BrandInfo | null = null;
let state: FlowState = initialState();
let results: { status: "loading" | "ready" | "error"; cards: ProgramCard[]; error?: unknown } = { status: "loading", cards: [] };
let chosenPrograms: string[] = [];
let leadOrigin: "results" | "chat" = "results";
let leadForm: LeadForm | null = null;
let stored: LeadAnswer | null = null;
let activeTab: "flow" | "chat" = "flow";

// ---------------------------------------------------------------- tabs

function tab(id: "flow" | "chat", label: string): HTMLButtonElement {
  const selected = activeTab === id;
  return h("button", { class: selected ? "tab tab-active" : "tab", id: `tab-${id}`, role: "tab", type: "button",
    "aria-selected": String(selected), "aria-controls": id, onclick: () => switchTab(id) }, label);
}

function switchTab(next: "flow" | "chat"): void {
  activeTab = next;
  screen.hidden = next !== "flow";
  chatPane.hidden = next !== "chat";
  root.querySelector("nav.tabs")?.replaceWith(h("nav", { class: "tabs", role: "tablist", "aria-label": "Разделы" },
    tab("flow", "Подбор курса"), tab("chat", "Чат с помощником")));
  syncTelegramButtons();
}

// ---------------------------------------------------------------- flow

function go(next: FlowState): void {
  state = next;
  render();
  window.scrollTo(0, 0);
}

async function loadResults(): Promise<void> {
  const signal = searches.next(); // a slower answer to an earlier choice is aborted, never drawn
  results = { status: "loading", cards: [] };
  render();
  try {
    const answer = await requestJson<SearchAnswer>(`/api/catalog/search?${searchQuery(state.profile, brand)}`, { signal });
    results = { status: "ready", cards: answer.items.slice(0, 3) };
  } catch (error) {
    if (isAbort(error)) return;
    results = { status: "error", cards: [], error };
  }
  if (state.step === "results") render();
}

function render(): void {
  syncTelegramButtons();
  if (isQuestion(state.step)) return renderQuestion();
  if (state.step === "results") return renderResults();
  if (state.step === "lead") return renderLead();
  renderDone();
}

function backLink(): Node | null {
  // Inside Telegram the native BackButton does this; a plain browser gets a link.
  return !app && canGoBack(state) ? h("button", { class: "link back", type: "button", onclick: goBack }, "← Назад") : null;
}

function goBack(): void {
  if (state.step === "lead" && leadOrigin === "chat") {
    state = back(state);
    switchTab("chat");
    return;
  }
  if (state.step === "lead") closingGuard(false);
  const previous = back(state);
  go(previous);
  if (previous.step === "results" && results.status !== "ready") void loadResults();
}

function renderQuestion(): void {
  const step = state.step as keyof typeof QUESTIONS;
  const onPick = (value: string) => () => {
    state = choose(state, value);
    if (state.step === "results") void loadResults();
    else go(state);
  };
  replaceChildren(
    screen,
    backLink(),
    summary(state.profile) ? h("p", { class: "summary" }, summary(state.profile)) : null,
    h("h2", { id: "question" }, QUESTIONS[step]),
    h("div", { class: step === "grade" ? "options options-grid" : "options", "data-step": step, role: "group", "aria-labelledby": "question" },
      ...optionsFor(state).map((o) => h("button", { class: "option", type: "button", "data-value": o.value, onclick: onPick(o.value) }, o.label))),
  );
}

function toLead(ids: string[]): void {
  chosenPrograms = ids;
  leadOrigin = "results";
  go(proceedToLead(state));
}

function renderResults(): void {
  const head = [backLink(), h("p", { class: "summary" }, summary(state.profile))];
  if (results.status === "loading") return replaceChildren(screen, ...head, loadingView("Подбираем программы…"));
  if (results.status === "error") return replaceChildren(screen, ...head, errorView(results.error, () => void loadResults(), "подобрать программы"));
  const cards = results.cards;
  replaceChildren(
    screen,
    ...head,
    h("h2", {}, cards.length ? "Вам подойдут" : "Подберём программу вместе с менеджером"),
    cards.length
      ? renderCards(cards, { onPick: (card) => toLead([card.id]), onOpen: (url) => openExternal(app, url) })
      : emptyView("По этим условиям готовой программы в каталоге нет — оставьте заявку, и менеджер предложит варианты."),
    app ? null : h("button", { class: "primary wide", type: "button", onclick: () => toLead(cards.map((c) => c.id)) }, "Оставить заявку"),
  );
}

// ---------------------------------------------------------------- the lead form

interface LeadForm {
  name: HTMLInputElement;
  phone: HTMLInputElement;
  consent: HTMLInputElement;
  marketing: HTMLInputElement;
  errors: Record<LeadField, HTMLElement>;
  general: HTMLElement;
}

/** A fresh form for every new request: consents never carried over (nor pre-ticked), the name from Telegram. */
function newLeadForm(): LeadForm {
  const telegramName = app?.initDataUnsafe?.user?.first_name ?? "";
  const error = (field: LeadField) => h("p", { class: "field-error", id: `error-${field}`, hidden: true });
  const form: LeadForm = {
    name: h("input", { id: "lead-name", name: "name", autocomplete: "given-name", maxlength: "100", "aria-describedby": "error-name" }),
    phone: h("input", { id: "lead-phone", name: "phone", type: "tel", inputmode: "tel", autocomplete: "tel", placeholder: "+7 999 123-45-67", "aria-describedby": "phone-hint error-phone" }),
    consent: h("input", { id: "consent-personal", type: "checkbox", "aria-describedby": "error-consent" }),
    marketing: h("input", { id: "consent-marketing", type: "checkbox" }),
    errors: { name: error("name"), phone: error("phone"), consent: error("consent") },
    general: h("div", { class: "form-errors", role: "alert" }),
  };
  form.name.value = telegramName;
  for (const input of [form.name, form.phone, form.consent, form.marketing]) {
    input.addEventListener("input", () => closingGuard(isDirty(form, telegramName)));
    input.addEventListener("change", () => closingGuard(isDirty(form, telegramName)));
  }
  return form;
}

const isDirty = (form: LeadForm, initialName: string): boolean =>
  form.name.value.trim() !== initialName || Boolean(form.phone.value.trim()) || form.consent.checked || form.marketing.checked;

/** Telegram asks before closing the app while a filled form would be lost. */
function closingGuard(on: boolean): void {
  if (!app) return;
  if (on) app.enableClosingConfirmation();
  else app.disableClosingConfirmation();
}

function legalLink(document: "consent" | "privacy", label: string): HTMLAnchorElement {
  const url = `/api/legal/${brand}/${document}`;
  return h("a", { href: url, target: "_blank", rel: "noopener", onclick: (event: Event) => {
    if (!app) return;
    event.preventDefault();
    openExternal(app, new URL(url, location.href).href);
  } }, label);
}

function showErrors(form: LeadForm, errors: LeadFormErrors, general?: string): void {
  const inputs: Record<LeadField, HTMLInputElement> = { name: form.name, phone: form.phone, consent: form.consent };
  for (const field of LEAD_FIELDS) {
    const message = errors[field];
    form.errors[field].textContent = message ?? "";
    form.errors[field].hidden = !message;
    if (message) inputs[field].setAttribute("aria-invalid", "true");
    else inputs[field].removeAttribute("aria-invalid");
  }
  replaceChildren(form.general, general ? h("p", {}, general) : null);
  const first = LEAD_FIELDS.find((field) => errors[field]);
  if (first) {
    inputs[first].focus();
    inputs[first].scrollIntoView({ block: "center" });
  }
  if (first || general) haptic(app, "error");
}

function leadSubject(): string {
  const titles = results.cards.filter((c) => chosenPrograms.includes(c.id)).map((c) => `«${c.title}»`);
  if (titles.length === 1) return `Программа: ${titles[0]}`;
  const profile = profileText(leadProfile(state.profile) as Record<string, unknown>);
  return profile ? `Запрос: ${profile}` : "";
}

function renderLead(): void {
  if (!app) {
    replaceChildren(screen, backLink(), h("h2", {}, "Заявка на консультацию"), outsidePanel(brandInfo, "Заявка"));
    return;
  }
  leadForm ??= newLeadForm();
  const form = leadForm;
  const subject = leadSubject();
  replaceChildren(
    screen,
    h("h2", {}, "Заявка на консультацию"),
    subject ? h("p", { class: "summary" }, subject) : null,
    h("p", {}, "Оставьте контакты — менеджер перезвонит, ответит на вопросы и запишет на бесплатное пробное занятие."),
    h("label", { for: "lead-name" }, "Как к вам обращаться"),
    form.name,
    form.errors.name,
    h("label", { for: "lead-phone" }, "Телефон"),
    form.phone,
    h("p", { class: "hint", id: "phone-hint" }, "Российский номер: мобильный или городской."),
    form.errors.phone,
    h("div", { class: "check" }, form.consent, h("label", { for: "consent-personal" }, "Я даю согласие на обработку персональных данных (обязательно)."),
    ),
    h("p", { class: "hint legal" }, "Текст ", legalLink("consent", "согласия на обработку персональных данных"), " и ", legalLink("privacy", "политика обработки персональных данных"), "."),
    form.errors.consent,
    h("div", { class: "check" }, form.marketing, h("label", { for: "consent-marketing" }, "Хочу получать новости и предложения школы (необязательно).")),
    form.general,
  );
}

let submitting = false;

async function submitLead(): Promise<void> {
  const form = leadForm;
  if (!app || !form || state.step !== "lead" || submitting) return;
  const errors = validateLeadForm({ name: form.name.value, phone: form.phone.value, consentPersonalData: form.consent.checked });
  showErrors(form, errors);
  if (Object.keys(errors).length) return;
  submitting = true;
  app.MainButton.showProgress(false);
  try {
    stored = await requestJson<LeadAnswer>("/api/leads", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `tma ${app.initData}` },
      body: JSON.stringify({
        name: form.name.value.trim(),
        phone: form.phone.value.trim(),
        consent_personal_data: form.consent.checked,
        consent_marketing: form.marketing.checked,
        brand,
        ...leadProfile(state.profile),
        program_ids: chosenPrograms,
      }),
    });
    haptic(app, stored.duplicate ? "warning" : "success");
    closingGuard(false);
    leadForm = null; // the next request starts from a fresh form
    go(leadSent(state));
  } catch (error) {
    const e = error instanceof ApiError ? error : null;
    if (e?.field === "phone") showErrors(form, { phone: PHONE_ERROR });
    else if (e?.field === "name") showErrors(form, { name: "Проверьте имя: не больше 100 символов." });
    else if (e?.reason === "consent_required") showErrors(form, { consent: "Отметьте согласие на обработку персональных данных." });
    else showErrors(form, {}, errorText(error, "отправить заявку"));
  } finally {
    submitting = false;
    app.MainButton.hideProgress();
  }
}

function storedSubject(answer: LeadAnswer): string {
  if (answer.programs.length) return answer.programs.map((p) => `«${p.title}»`).join(", ");
  return profileText(answer.profile) || "консультацию";
}

function renderDone(): void {
  const answer = stored;
  if (!answer) return go(initialState());
  const hours = "Менеджер свяжется с вами в рабочее время (ежедневно 10:00–18:00).";
  replaceChildren(
    screen,
    answer.duplicate
      ? h("h2", {}, `У вас уже есть заявка №${answer.lead_id}`)
      : h("h2", {}, `Спасибо! Заявка №${answer.lead_id} принята`),
    h("p", {}, answer.duplicate ? `Уже есть заявка на ${storedSubject(answer)} — повторно её не отправляем. ${hours}` : `Заявка на ${storedSubject(answer)}. ${hours}`),
    answer.confirmation_sent ? h("p", { class: "hint" }, "Подтверждение мы отправили в чат с ботом.") : null,
    h("p", { class: "hint" }, "Для второго ребёнка или другой программы подберите ещё один курс — это будет отдельная заявка."),
  );
}

// ---------------------------------------------------------------- Telegram buttons

function syncTelegramButtons(): void {
  if (!app) return;
  const onFlow = activeTab === "flow";
  if (onFlow && canGoBack(state)) app.BackButton.show();
  else app.BackButton.hide();
  if (!onFlow || isQuestion(state.step)) return mainButton(app, null); // an option button is the action
  if (state.step === "results") {
    if (results.status !== "ready") return mainButton(app, null);
    return mainButton(app, { text: results.cards.length ? "Оставить заявку" : "Оставить заявку менеджеру", onClick: () => toLead(results.cards.map((c) => c.id)) });
  }
  if (state.step === "lead") return mainButton(app, { text: "Отправить заявку", onClick: () => void submitLead() });
  mainButton(app, { text: "Подобрать ещё один курс", onClick: () => { stored = null; go(initialState()); } });
}

// ---------------------------------------------------------------- start

function header(): HTMLElement {
  return h("header", { class: "brand-header" },
    h("p", { class: "brand-name" }, brandInfo?.name ?? "Онлайн-помощник школы"),
    h("h1", {}, "Подбор курса"));
}

async function start(): Promise<void> {
  const brandLoad = loadBrand(brand);
  app = await telegramReady();
  followTheme(app);
  app?.ready();
  app?.expand();
  app?.BackButton.onClick(goBack);
  root.replaceChildren(header(), offlineBanner, h("nav", { class: "tabs" }), screen, chatPane);
  const syncOnline = () => { offlineBanner.hidden = navigator.onLine; };
  window.addEventListener("online", syncOnline);
  window.addEventListener("offline", syncOnline);
  syncOnline();
  mountChat(chatPane, app, brand, {
    openLeadForm: (programId) => {
      chosenPrograms = programId ? [programId] : [];
      leadOrigin = "chat";
      state = leadFromChat(state);
      switchTab("flow");
      render();
    },
    outside: () => outsidePanel(brandInfo, "Чат с помощником"),
  });
  switchTab("flow");
  render();
  brandInfo = await brandLoad;
  root.querySelector("header.brand-header")?.replaceWith(header());
  if (!app) {
    // A plain browser: programs can be browsed here; the lead and the chat are one tap away in Telegram.
    root.querySelector("header.brand-header")?.after(outsideNotice());
    chatPane.querySelector(".outside")?.replaceWith(outsidePanel(brandInfo, "Чат с помощником"));
    if (state.step === "lead") render();
  }
}

void start();
