// Access to Telegram.WebApp (telegram-web-app.js, loaded async so it never blocks the first paint). Outside
// Telegram initData is empty: then the app runs as a plain web page and the server sees no Telegram user.

import type { WebApp } from "telegram-web-app";

const SCRIPT_WAIT_MS = 4000;

/** Telegram opens a Mini App with tgWebAppData in the URL fragment; a plain browser has none. */
function openedByTelegram(): boolean {
  return /tgWebAppData=/.test(location.hash) || Boolean(window.Telegram?.WebApp?.initData);
}

function current(): WebApp | null {
  const app = window.Telegram?.WebApp;
  return app && app.initData ? app : null;
}

/** The WebApp once telegram-web-app.js has run (or null in a plain browser, or when telegram.org is
 * unreachable for SCRIPT_WAIT_MS: the page stays usable as a web page instead of hanging blank). */
export async function telegramReady(): Promise<WebApp | null> {
  if (current() || !openedByTelegram()) return current();
  const script = document.querySelector<HTMLScriptElement>('script[src*="telegram-web-app.js"]');
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, SCRIPT_WAIT_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    script?.addEventListener("load", done, { once: true });
    script?.addEventListener("error", done, { once: true });
    if (!script) done();
  });
  return current();
}

/** Copy Telegram's theme into the --tg-theme-* variables the CSS reads, and its light/dark scheme into
 * color-scheme (so checkboxes, date pickers and scrollbars follow Telegram, not the phone). */
export function followTheme(app: WebApp | null): void {
  const root = document.documentElement;
  const apply = (): void => {
    if (!app) return;
    for (const [key, value] of Object.entries(app.themeParams ?? {})) {
      if (typeof value === "string") root.style.setProperty(`--tg-theme-${key.replace(/_/g, "-")}`, value);
    }
    root.dataset.theme = app.colorScheme;
    root.style.colorScheme = app.colorScheme;
    app.setHeaderColor?.("bg_color");
  };
  apply();
  app?.onEvent("themeChanged", apply);
}

export function openExternal(app: WebApp | null, url: string): void {
  if (app) app.openLink(url);
  else window.open(url, "_blank", "noopener");
}

export function haptic(app: WebApp | null, kind: "error" | "success" | "warning"): void {
  try {
    app?.HapticFeedback?.notificationOccurred(kind);
  } catch {
    // an old client without haptics: nothing to feel, nothing to break
  }
}

/** The one MainButton: each screen says what it does, or hides it. */
export function mainButton(app: WebApp | null, action: { text: string; active?: boolean; onClick: () => void } | null): void {
  if (!app) return;
  const button = app.MainButton;
  const previous = (mainButton as { handler?: () => void }).handler;
  if (previous) button.offClick(previous);
  (mainButton as { handler?: () => void }).handler = undefined;
  if (!action) {
    button.hide();
    return;
  }
  (mainButton as { handler?: () => void }).handler = action.onClick;
  button.onClick(action.onClick);
  button.setText(action.text);
  if (action.active === false) button.disable();
  else button.enable();
  button.show();
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly field?: string,
  ) {
    super(`${status} ${reason}`);
  }

  /** No answer at all: offline, or the server unreachable. */
  get offline(): boolean {
    return this.status === 0;
  }

  /** initData too old (or forged): only reopening the app helps. */
  get sessionExpired(): boolean {
    return this.status === 401 && ["expired", "invalid_init_data", "init_data_expired"].includes(this.reason);
  }
}

/** fetch JSON; a non-2xx answer becomes ApiError with the server's reason and field, no answer ApiError(0).
 * An aborted request rethrows the AbortError: the caller asked for it and draws nothing. */
export async function requestJson<T>(url: string, init: RequestInit = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { credentials: "same-origin", ...init });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, navigator.onLine ? "unreachable" : "offline");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.reason ?? "error", body.field ?? undefined);
  return body as T;
}

export const isAbort = (error: unknown): boolean => error instanceof DOMException && error.name === "AbortError";

/** Keeps only the newest request of a kind: starting one aborts the one before, so a slow answer to an
 * earlier choice can never overwrite a later one. */
export class Latest {
  private controller: AbortController | null = null;

  next(): AbortSignal {
    this.controller?.abort();
    this.controller = new AbortController();
    return this.controller.signal;
  }
}
