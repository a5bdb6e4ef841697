// The admin app's API client: initData of an allowed admin inside Telegram, Basic auth in a browser
// (the browser asks for the login once when the API answers 401 with WWW-Authenticate).

import type { WebApp } from "telegram-web-app";
import { requestJson } from "./telegram";

export interface Lead {
  id: number;
  created_at: string;
  brand: string;
  channel: string;
  source: string | null;
  name: string | null;
  phone: string;
  profile: Record<string, unknown>;
  program_ids: string[];
  programs?: { id: string; title: string }[];
  status: string;
  manager_note: string | null;
  crm_status: string;
  crm_error: string | null;
}

export interface Page<T> {
  ok: boolean;
  items: T[];
  total: number;
  page: number;
  per_page: number;
}

export interface ConversationItem {
  id: number;
  brand: string;
  user: { first_name: string | null; username: string | null; external_id: string; source: string | null } | null;
  profile: Record<string, unknown>;
  in_human_mode: boolean;
  handoff_reason: string | null;
  last_message: { role: string; text: string; created_at: string } | null;
  last_message_at: string | null;
}

/** A transcript message; engine, cards and tool_calls come from the one turn-meta shape (agent/turn_meta.py). */
export interface TranscriptMessage {
  id: number;
  role: string;
  channel: string;
  content: string;
  engine: string | null;
  cards: { id: string; title: string }[];
  tool_calls: string[];
  meta?: { manager_name?: string | null; delivery?: string } | null;
  created_at: string;
}

export interface FunnelRow {
  conversations: number;
  qualified: number;
  programs_shown: number;
  contact_left: number;
  crm_delivered: number;
  tokens: number;
  tokens_per_lead: number | null;
  day?: string;
  source?: string;
}

export interface Funnel {
  date_from: string;
  date_to: string;
  by_day: FunnelRow[];
  by_source: FunnelRow[];
  totals: FunnelRow;
}

/** A consent record (GET /admin/consents); a withdrawal lists the requests the CRM still holds. */
export interface ConsentItem {
  id: number;
  user_id: number;
  identity: string;
  external_id: string;
  kind: string;
  event: "granted" | "refused" | "withdrawn";
  granted: boolean;
  channel: string;
  text_version: string;
  created_at: string;
  crm_leads?: { lead_id: number; crm_id: string | null }[];
}

export const LEAD_STATUSES: Record<string, string> = {
  new: "Новая",
  contacted: "Связались",
  trial: "Пробное",
  enrolled: "Зачислен",
  lost: "Отказ",
};

export class AdminApi {
  constructor(private readonly app: WebApp | null) {}

  private headers(json = false): HeadersInit {
    const headers: Record<string, string> = {};
    if (this.app) headers["X-Tg-Init-Data"] = this.app.initData;
    if (json) headers["Content-Type"] = "application/json";
    return headers;
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return requestJson<T>(path, { headers: this.headers(), signal });
  }

  send<T>(method: "PATCH" | "POST", path: string, body?: unknown): Promise<T> {
    return requestJson<T>(path, { method, headers: this.headers(true), body: body === undefined ? undefined : JSON.stringify(body) });
  }
}
