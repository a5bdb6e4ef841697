// The lead form's checks. The phone rule mirrors the server's (agent/phones.py normalize_phone) exactly;
// tests/data/phone_rule.json is the table both test suites check, so the two cannot drift apart.

export const PHONE_ERROR = "Проверьте номер: нужен российский номер, например +7 999 123-45-67.";

/** +7XXXXXXXXXX for a Russian number (mobile 9xx, city 3xx/4xx/8xx) written in any usual way, else null. */
export function normalisePhone(input: string): string | null {
  let digits = input.replace(/\D/g, "");
  if (digits.length === 10) digits = `7${digits}`;
  else if (digits.length === 11 && digits.startsWith("8")) digits = `7${digits.slice(1)}`;
  if (digits.length !== 11 || digits[0] !== "7" || !"3489".includes(digits[1])) return null;
  return `+${digits}`;
}

export interface LeadFormInput {
  name: string;
  phone: string;
  consentPersonalData: boolean;
}

export type LeadField = "name" | "phone" | "consent";
export type LeadFormErrors = Partial<Record<LeadField, string>>;
/** The order errors are shown and focused in: the first wrong field gets the focus. */
export const LEAD_FIELDS: LeadField[] = ["name", "phone", "consent"];

export function validateLeadForm(input: LeadFormInput): LeadFormErrors {
  const errors: LeadFormErrors = {};
  const name = input.name.trim();
  if (!name) errors.name = "Пожалуйста, укажите, как к вам обращаться.";
  else if (name.length > 100) errors.name = "Имя слишком длинное: не больше 100 символов.";
  if (!normalisePhone(input.phone)) errors.phone = PHONE_ERROR;
  if (!input.consentPersonalData) errors.consent = "Чтобы отправить заявку, отметьте согласие на обработку персональных данных.";
  return errors;
}
