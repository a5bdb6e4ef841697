// Honest states: what a screen shows while it waits, when there is nothing, and when something failed.

import { h } from "./dom";
import { ApiError } from "./telegram";

export function loadingView(text = "Загружаем…"): HTMLElement {
  return h("p", { class: "state state-loading", role: "status", "aria-live": "polite" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

export function emptyView(text: string): HTMLElement {
  return h("p", { class: "state state-empty" }, text);
}

/** What went wrong, in words a parent understands, for any error a request can end with. */
export function errorText(error: unknown, what = "загрузить данные"): string {
  const e = error instanceof ApiError ? error : null;
  if (e?.offline) return e.reason === "offline" ? "Нет соединения с интернетом. Проверьте связь и попробуйте ещё раз." : `Не удалось ${what}: сервер не отвечает. Попробуйте ещё раз.`;
  if (e?.sessionExpired) return "Сессия Telegram устарела: закройте мини-приложение и откройте его снова.";
  if (e?.status === 429) return "Слишком много запросов подряд — подождите минуту, пожалуйста.";
  return `Не удалось ${what}. Попробуйте ещё раз.`;
}

/** An error with a «Повторить» button (not for an expired session: only reopening helps there). */
export function errorView(error: unknown, retry: (() => void) | null, what?: string): HTMLElement {
  const expired = error instanceof ApiError && error.sessionExpired;
  return h("div", { class: "state state-error notice", role: "alert" },
    h("p", {}, errorText(error, what)),
    retry && !expired ? h("button", { class: "secondary", type: "button", onclick: retry }, "Повторить") : null);
}
