// The user Mini App (/app): qualification steps, the top-3 programs, the lead form and a chat tab.

import "./style.css";
import { h, replaceChildren } from "./dom";
import { validateLeadForm, type LeadFormErrors } from "./phone";
import { renderCards, type ProgramCard } from "./cards";
import { mountChat } from "./chat";
import {
  QUESTIONS,
  back,
  canGoBack,
  choose,
  initialState,
  isQuestion,
  leadProfile,
  leadSent,
  optionsFor,
  proceedToLead,
  searchQuery,
  summary,
  type FlowState,
} from "./steps";
import { ApiError, followTheme, openExternal, requestJson, telegramApp } from "./telegram";

interface SearchAnswer {
  ok: boolean;
  items: ProgramCard[];
  manager_recommended?: boolean;
}

const app = telegramApp();
const brand = new URLSearchParams(location.search).get("brand") ?? "kmipt";
const root = document.getElementById("app")!;
const screen = h("main", { class: "screen" });
const chatPane = h("section", { class: "chat", hidden: true });

let state: FlowState = initialState();
let cards: ProgramCard[] = [];
let chosenPrograms: string[] = [];
let leadId: number | null = null;

function tab(label: string, selected: boolean, onclick: () => void): HTMLButtonElement {
  return h("button", { class: selected ? "tab tab-active" : "tab", role: "tab", "aria-selected": String(selected), onclick }, label);
}

function renderTabs(active: "flow" | "chat"): void {
  const tabs = h(
    "nav",
    { class: "tabs", role: "tablist" },
    tab("Подбор курса", active === "flow", () => switchTab("flow")),
    tab("Чат с помощником", active === "chat", () => switchTab("chat")),
  );
  root.querySelector("nav.tabs")?.replaceWith(tabs);
}

function switchTab(active: "flow" | "chat"): void {
  screen.hidden = active !== "flow";
  chatPane.hidden = active !== "chat";
  renderTabs(active);
  syncTelegramButtons();
}

function go(next: FlowState): void {
  state = next;
  render();
}

async function loadResults(): Promise<void> {
  replaceChildren(screen, h("p", { class: "muted" }, "Подбираем программы…"));
  try {
    const answer = await requestJson<SearchAnswer>(`/api/catalog/search?${searchQuery(state.profile, brand)}`);
    cards = answer.items.slice(0, 3);
  } catch {
    cards = [];
  }
  render();
}

function render(): void {
  syncTelegramButtons();
  if (isQuestion(state.step)) return renderQuestion();
  if (state.step === "results") return renderResults();
  if (state.step === "lead") return renderLeadForm();
  renderDone();
}

function backLink(): Node | null {
  // Inside Telegram the native BackButton does this; a plain browser gets a link.
  return !app && canGoBack(state) ? h("button", { class: "link back", onclick: () => go(back(state)) }, "← Назад") : null;
}

function renderQuestion(): void {
  const step = state.step as keyof typeof QUESTIONS;
  const onPick = (value: string) => () => {
    const next = choose(state, value);
    state = next;
    if (next.step === "results") void loadResults();
    else render();
  };
  replaceChildren(
    screen,
    backLink(),
    summary(state.profile) ? h("p", { class: "summary" }, summary(state.profile)) : null,
    h("h2", {}, QUESTIONS[step]),
    h(
      "div",
      { class: step === "grade" ? "options options-grid" : "options", "data-step": step },
      ...optionsFor(state).map((o) => h("button", { class: "option", "data-value": o.value, onclick: onPick(o.value) }, o.label)),
    ),
  );
}

function renderResults(): void {
  const toLead = (ids: string[]) => () => {
    chosenPrograms = ids;
    go(proceedToLead(state));
  };
  replaceChildren(
    screen,
    backLink(),
    h("p", { class: "summary" }, summary(state.profile)),
    h("h2", {}, cards.length ? "Вам подойдут" : "Подберём программу вместе с менеджером"),
    cards.length
      ? renderCards(cards, { onPick: (id) => toLead([id])(), onOpen: (url) => openExternal(app, url) })
      : h("p", {}, "По этим условиям готовой программы не нашлось — оставьте заявку, и менеджер предложит варианты."),
    h("button", { class: "primary wide", onclick: toLead(cards.map((c) => c.id)) }, "Оставить заявку — менеджер поможет с выбором"),
  );
}

const form = {
  name: h("input", { id: "lead-name", name: "name", autocomplete: "name", maxlength: "100", placeholder: "Например, Ольга" }),
  phone: h("input", { id: "lead-phone", name: "phone", type: "tel", autocomplete: "tel", placeholder: "+7 999 123-45-67" }),
  consent: h("input", { id: "consent-personal", type: "checkbox" }),
  marketing: h("input", { id: "consent-marketing", type: "checkbox" }),
  errors: h("div", { class: "form-errors", role: "alert" }),
  consentHint: h("p", { class: "muted", id: "consent-hint" }, "Кнопка «Отправить заявку» станет активной, когда вы отметите согласие на обработку персональных данных."),
};
form.consent.addEventListener("change", () => {
  form.consentHint.hidden = form.consent.checked;
  syncTelegramButtons();
});

function legalLink(document: "consent" | "privacy", label: string): HTMLAnchorElement {
  const url = `/api/legal/${brand}/${document}`;
  return h("a", { href: url, target: "_blank", rel: "noopener", onclick: (event: Event) => {
    if (!app) return;
    event.preventDefault();
    openExternal(app, new URL(url, location.href).href);
  } }, label);
}

function showErrors(errors: LeadFormErrors, general?: string): void {
  const messages = [errors.name, errors.phone, errors.consent, general].filter(Boolean) as string[];
  replaceChildren(form.errors, ...messages.map((m) => h("p", {}, m)));
  form.name.toggleAttribute("aria-invalid", Boolean(errors.name));
  form.phone.toggleAttribute("aria-invalid", Boolean(errors.phone));
}

function renderLeadForm(): void {
  const intro = app
    ? h("p", {}, "Оставьте контакты — менеджер перезвонит, ответит на вопросы и запишет на бесплатное пробное занятие.")
    : h("p", { class: "notice" }, "Оставить заявку можно в мини-приложении внутри Telegram: откройте нашего бота и отправьте команду /app. Здесь вы можете спокойно посмотреть программы.");
  replaceChildren(
    screen,
    backLink(),
    h("h2", {}, "Заявка на консультацию"),
    intro,
    h("label", { for: "lead-name" }, "Как к вам обращаться"),
    form.name,
    h("label", { for: "lead-phone" }, "Телефон"),
    form.phone,
    h("label", { class: "check" }, form.consent, h("span", {}, "Я даю ", legalLink("consent", "согласие на обработку персональных данных"), " и ознакомлен(а) с ", legalLink("privacy", "политикой обработки персональных данных"), ".")),
    h("label", { class: "check" }, form.marketing, h("span", {}, "Хочу получать новости и предложения школы (необязательно).")),
    app ? form.consentHint : null,
    form.errors,
  );
  form.consentHint.hidden = form.consent.checked;
  for (const input of [form.name, form.phone]) input.disabled = !app;
  form.consent.disabled = !app;
  form.marketing.disabled = !app;
}

async function submitLead(): Promise<void> {
  if (!app || state.step !== "lead") return;
  const errors = validateLeadForm({ name: form.name.value, phone: form.phone.value, consentPersonalData: form.consent.checked });
  showErrors(errors);
  if (Object.keys(errors).length) return;
  app.MainButton.showProgress(false);
  try {
    const answer = await requestJson<{ ok: boolean; lead_id: number }>("/api/leads", {
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
    leadId = answer.lead_id;
    app.HapticFeedback?.notificationOccurred("success");
    go(leadSent(state));
  } catch (error) {
    const e = error instanceof ApiError ? error : null;
    if (e?.field === "phone") showErrors({ phone: "Проверьте номер телефона: нужен российский мобильный номер." });
    else if (e?.reason === "consent_required") showErrors({ consent: "Отметьте согласие на обработку персональных данных." });
    else if (e?.status === 401) showErrors({}, "Сессия Telegram устарела: закройте и снова откройте мини-приложение.");
    else showErrors({}, "Не удалось отправить заявку. Пожалуйста, попробуйте ещё раз через минуту.");
  } finally {
    app.MainButton.hideProgress();
  }
}

function renderDone(): void {
  replaceChildren(
    screen,
    h("h2", {}, "Спасибо! Заявка принята"),
    h("p", {}, `Номер заявки: ${leadId}. Менеджер свяжется с вами в рабочее время (ежедневно 10:00–18:00). Подтверждение мы также отправили в чат с ботом.`),
    h("button", { class: "link", onclick: () => go(initialState()) }, "Подобрать ещё один курс"),
  );
}

function syncTelegramButtons(): void {
  if (!app) return;
  const onFlow = !screen.hidden;
  if (onFlow && canGoBack(state)) app.BackButton.show();
  else app.BackButton.hide();
  if (onFlow && state.step === "lead") {
    app.MainButton.setText("Отправить заявку");
    // Not pre-ticked and required: the button stays inactive until the consent box is ticked.
    if (form.consent.checked) app.MainButton.enable();
    else app.MainButton.disable();
    app.MainButton.show();
  } else {
    app.MainButton.hide();
  }
}

function start(): void {
  followTheme(app);
  app?.ready();
  app?.expand();
  app?.BackButton.onClick(() => go(back(state)));
  app?.MainButton.onClick(() => void submitLead());
  root.append(h("nav", { class: "tabs" }), screen, chatPane);
  if (!app) root.prepend(h("p", { class: "notice" }, "Вы открыли мини-приложение в браузере: программы можно посмотреть здесь, а заявка и чат работают внутри Telegram."));
  mountChat(chatPane, app, brand);
  switchTab("flow");
  render();
}

start();
