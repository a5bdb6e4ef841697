import { describe, expect, it } from "vitest";
import { normalisePhone, validateLeadForm } from "./phone";

describe("phone", () => {
  it.each([
    ["+7 999 123-45-67", "+79991234567"],
    ["8 (999) 123 45 67", "+79991234567"],
    ["9991234567", "+79991234567"],
  ])("normalises %s", (input, expected) => {
    expect(normalisePhone(input)).toBe(expected);
  });

  it.each(["12345", "+1 202 555 0101 22", "9991234567a", ""])("rejects %s", (input) => {
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
    expect(validateLeadForm({ name: "Ольга", phone: "+79991234567", consentPersonalData: false })).toEqual({
      consent: expect.any(String),
    });
    expect(validateLeadForm({ name: "Ольга", phone: "+79991234567", consentPersonalData: true })).toEqual({});
  });
});
