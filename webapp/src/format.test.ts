import { describe, expect, it } from "vitest";
import { inlines, parseText, startLine } from "./format";

describe("assistant text formatting", () => {
  it("keeps paragraphs, line breaks and lists", () => {
    const text = "Есть два варианта:\n- онлайн;\n- очно.\n\nСтоимость 31 350 ₽ за семестр.\nПервое занятие бесплатно.";
    expect(parseText(text)).toEqual([
      { kind: "p", lines: [[{ text: "Есть два варианта:" }]] },
      { kind: "ul", items: [[{ text: "онлайн;" }], [{ text: "очно." }]] },
      { kind: "p", lines: [[{ text: "Стоимость 31 350 ₽ за семестр." }], [{ text: "Первое занятие бесплатно." }]] },
    ]);
  });

  it("numbers and bullets are lists too", () => {
    expect(parseText("1. Физика\n2) Математика\n• Информатика").map((b) => b.kind)).toEqual(["ul"]);
  });

  it("links http(s) URLs without the sentence's punctuation, and nothing else", () => {
    expect(inlines("Подробнее: https://kmipt.ru/courses/ege. Или javascript:alert(1)")).toEqual([
      { text: "Подробнее: " },
      { url: "https://kmipt.ru/courses/ege" },
      { text: ". Или javascript:alert(1)" },
    ]);
  });

  it("treats markup as text", () => {
    expect(parseText("<b>жирный</b> <img src=x onerror=alert(1)>")).toEqual([
      { kind: "p", lines: [[{ text: "<b>жирный</b> <img src=x onerror=alert(1)>" }]] },
    ]);
  });
});

describe("program card start line", () => {
  it("labels a date and lets a sentence read on its own", () => {
    expect(startLine("13.09.2026")).toBe("Ближайший старт: 13.09.2026");
    expect(startLine("13.09.2026 (предварительно)")).toBe("Ближайший старт: 13.09.2026 (предварительно)");
    expect(startLine("Учебный год идёт — можно присоединиться в любое время")).toBe(
      "Учебный год идёт — можно присоединиться в любое время",
    );
  });
});
