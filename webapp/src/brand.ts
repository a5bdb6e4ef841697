// The school's name for the header, and the way to reach it for a visitor outside Telegram (GET /api/brand).

import { h } from "./dom";
import { requestJson } from "./telegram";

export interface BrandInfo {
  id: string;
  name: string;
  domain: string;
  phones: { text: string; tel: string }[];
  bot_url: string | null;
  school_telegram_url: string | null;
}

export async function loadBrand(brand: string): Promise<BrandInfo | null> {
  try {
    return await requestJson<BrandInfo>(`/api/brand?brand=${encodeURIComponent(brand)}`);
  } catch {
    return null; // the header keeps its generic title; nothing else depends on it
  }
}

/** One line on top of a plain-browser visit: the catalog works here, the rest is a tap away. */
export function outsideNotice(): HTMLElement {
  return h("p", { class: "notice outside-top" }, "Вы открыли страницу в браузере: программы можно посмотреть здесь, а заявку оставить в Telegram или по телефону.");
}

/** For a plain-browser visitor: where the lead form and the chat work, and how to call the school. */
export function outsidePanel(info: BrandInfo | null, what: string): HTMLElement {
  const telegram = info?.bot_url ?? info?.school_telegram_url;
  return h("div", { class: "notice outside" },
    h("p", {}, `${what} работает внутри Telegram — там можно оставить заявку и задать вопрос помощнику.`),
    telegram ? h("a", { class: "button-link primary", href: telegram, target: "_blank", rel: "noopener" }, info?.bot_url ? "Открыть бота в Telegram" : "Написать школе в Telegram") : null,
    info?.phones.length
      ? h("p", {}, "Или позвоните нам: ", ...info.phones.flatMap((p, i) => [i ? ", " : "", h("a", { href: `tel:${p.tel}` }, p.text)]), " (ежедневно 10:00–18:00).")
      : null,
    info ? h("p", {}, "Сайт школы: ", h("a", { href: `https://${info.domain}`, target: "_blank", rel: "noopener" }, info.domain)) : null);
}
