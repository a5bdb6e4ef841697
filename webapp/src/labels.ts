// Russian words for every code the apps show (profile fields, channels, CRM states, roles, tools).

export const GOAL_LABELS: Record<string, string> = {
  base: "Углублённая школьная программа",
  oge: "Подготовка к ОГЭ",
  ege: "Подготовка к ЕГЭ",
  olympiad: "Олимпиады",
  intensive: "Интенсив перед экзаменом",
  camp: "Летний лагерь",
};

export const SUBJECT_LABELS: Record<string, string> = {
  math: "Математика",
  physics: "Физика",
  informatics: "Информатика",
  russian: "Русский язык",
};

export const FORMAT_LABELS: Record<string, string> = {
  online: "Онлайн",
  offline: "Очно",
  hybrid: "Гибридный (очно + онлайн)",
};

export const CHANNEL_LABELS: Record<string, string> = {
  telegram: "Telegram-бот",
  miniapp: "Мини-приложение",
  api: "Сайт / API",
  admin: "Администратор",
};

export const CONSENT_EVENT_LABELS: Record<string, string> = {
  granted: "Согласие дано",
  refused: "Отказ дать согласие",
  withdrawn: "Согласие отозвано",
};

export const CONSENT_KIND_LABELS: Record<string, string> = {
  personal_data: "Персональные данные",
  marketing: "Рассылки",
};

export const CRM_LABELS: Record<string, string> = {
  pending: "Ждёт отправки в CRM",
  delivered: "Передана в CRM",
  failed: "Не передана в CRM",
  skipped: "CRM не подключена",
};

const BUTTON_LABELS: Record<string, string> = {
  handoff: "Позвать менеджера",
  "contact:start": "Оставить заявку",
  "consent:yes": "Согласен(на)",
  "consent:no": "Не согласен(на)",
  restart: "Подобрать заново",
};

/** The transcript's stored descriptions of buttons and contacts, in words («[кнопка handoff]» → …). */
export function storedUserText(text: string): string {
  const button = /^\[кнопка (.+)\]$/.exec(text.trim());
  if (!button) return text;
  const payload = button[1];
  if (payload.startsWith("program:")) return "Нажата кнопка «Записаться» на программу";
  return `Нажата кнопка «${BUTTON_LABELS[payload] ?? payload}»`;
}

export const ROLE_LABELS: Record<string, string> = {
  user: "Клиент",
  assistant: "Помощник",
  manager: "Менеджер",
  system: "Система",
};

export const TOOL_LABELS: Record<string, string> = {
  catalog_search: "поиск по каталогу",
  kb_file_search: "поиск в базе знаний",
  web_fallback: "поиск на сайте школы",
  crm_lookup: "проверка в CRM",
  create_lead: "создание заявки",
  handoff_to_manager: "передача менеджеру",
};

export const SOURCE_LABELS: Record<string, string> = {
  "(direct)": "Прямой заход",
  miniapp: "Мини-приложение",
};

export const label = (labels: Record<string, string>, code: string | null | undefined): string =>
  code ? labels[code] ?? code : "—";

/** «10 класс · Подготовка к ЕГЭ · Математика · Онлайн» from a stored profile. */
export function profileText(profile: Record<string, unknown> | null | undefined): string {
  if (!profile) return "";
  const parts: string[] = [];
  if (profile.grade) parts.push(`${profile.grade} класс`);
  if (typeof profile.goal === "string") parts.push(label(GOAL_LABELS, profile.goal));
  if (typeof profile.subject === "string") parts.push(label(SUBJECT_LABELS, profile.subject));
  if (typeof profile.format === "string") parts.push(label(FORMAT_LABELS, profile.format));
  return parts.join(" · ");
}

export const when = (iso: string | null | undefined): string =>
  iso ? new Date(iso).toLocaleString("ru-RU", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }) : "—";

export const day = (iso: string): string =>
  new Date(`${iso}T00:00:00Z`).toLocaleDateString("ru-RU", { day: "numeric", month: "short", timeZone: "UTC" });
