// Client-side phone check for the lead form; the server normalises and validates again.

/** +7XXXXXXXXXX for a Russian number written in any usual way, otherwise null. */
export function normalisePhone(input: string): string | null {
  if (/[^\d\s()+\-.]/.test(input)) return null;
  let digits = input.replace(/\D/g, "");
  if (digits.length === 11 && (digits.startsWith("7") || digits.startsWith("8"))) digits = digits.slice(1);
  return digits.length === 10 ? `+7${digits}` : null;
}

export interface LeadFormInput {
  name: string;
  phone: string;
  consentPersonalData: boolean;
}

export type LeadFormErrors = Partial<Record<"name" | "phone" | "consent", string>>;

export function validateLeadForm(input: LeadFormInput): LeadFormErrors {
  const errors: LeadFormErrors = {};
  const name = input.name.trim();
  if (!name) errors.name = "Пожалуйста, укажите, как к вам обращаться.";
  else if (name.length > 100) errors.name = "Имя слишком длинное.";
  if (!normalisePhone(input.phone)) errors.phone = "Проверьте номер: нужен российский номер, например +7 999 123-45-67.";
  if (!input.consentPersonalData) errors.consent = "Чтобы отправить заявку, отметьте согласие на обработку персональных данных.";
  return errors;
}
