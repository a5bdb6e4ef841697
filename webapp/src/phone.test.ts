import { describe, expect, it } from "vitest";
import rule from "../../tests/data/phone_rule.json";
import { normalisePhone, validateLeadForm } from "./phone";

// The server's tests (tests/test_leads.py) read the same table: one phone rule for app and server.
const table = rule as unknown as { valid: [string, string][]; invalid: string[] };

describe("phone rule shared with the server", () => {
  it.each(table.valid)("normalises %s", (input, expected) => {
    expect(normalisePhone(input)).toBe(expected);
  });

  it.each(table.invalid)("rejects %s", (input) => {
    expect(normalisePhone(input)).toBeNull();
  });
});

describe("lead form", () => {
  it("needs a name, a valid phone and the personal-data consent", () => {
    expect(validateLeadForm({ name: " ", phone: "1", consentPersonalData: false })).toEqual({
      name: expect.any(String),
      phone: expect.any(String),
      consent: expect.stringContaining("согласие"),
    });
    expect(validateLeadForm({ name: "Ольга", phone: "+7 111 111-11-11", consentPersonalData: true })).toEqual({
      phone: expect.stringContaining("+7 999"),
    });
    expect(validateLeadForm({ name: "Ольга", phone: "+79991234567", consentPersonalData: true })).toEqual({});
  });
});
