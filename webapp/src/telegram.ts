// Access to Telegram.WebApp (telegram-web-app.js). Outside Telegram the script still loads, but
// initData is empty: then the app runs as a plain web page and the server sees no Telegram user.

import type { WebApp } from "telegram-web-app";

export function telegramApp(): WebApp | null {
  const app = window.Telegram?.WebApp;
  return app && app.initData ? app : null;
}

/** Copy Telegram's theme into the --tg-theme-* variables the CSS reads, and follow changes. */
export function followTheme(app: WebApp | null): void {
  const root = document.documentElement;
  const apply = (): void => {
    if (!app) return;
    for (const [key, value] of Object.entries(app.themeParams ?? {})) {
      if (typeof value === "string") root.style.setProperty(`--tg-theme-${key.replace(/_/g, "-")}`, value);
    }
    root.dataset.theme = app.colorScheme;
  };
  apply();
  app?.onEvent("themeChanged", apply);
}

export function openExternal(app: WebApp | null, url: string): void {
  if (app) app.openLink(url);
  else window.open(url, "_blank", "noopener");
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly field?: string,
  ) {
    super(`${status} ${reason}`);
  }
}

/** fetch JSON; a non-2xx answer becomes ApiError carrying the server's reason and field. */
export async function requestJson<T>(url: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(url, { credentials: "same-origin", ...init });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.reason ?? "error", body.field ?? undefined);
  return body as T;
}
