// Assistant text -> DOM. The same subset the Telegram renderer sends (adapters/telegram/rendering.py: plain
// text with every character escaped, Telegram linking URLs itself): paragraphs, line breaks, «- » / «• » /
// «1. » lists and http(s) links. Nothing is parsed as HTML: text only ever becomes text nodes.
// parseText is pure (unit-tested without a DOM); renderText turns its blocks into elements.

import { h } from "./dom";

export type Inline = { text: string } | { url: string };
export type Block = { kind: "p"; lines: Inline[][] } | { kind: "ul"; items: Inline[][] };

const LIST_ITEM = /^\s*(?:[-•*—–]|\d{1,2}[.)])\s+/;
const URL = /\bhttps?:\/\/[^\s<>«»"]+/g;
const TRAILING = /[.,;:!?)»]+$/;

export function inlines(text: string): Inline[] {
  const parts: Inline[] = [];
  let last = 0;
  for (const match of text.matchAll(URL)) {
    const url = match[0].replace(TRAILING, "");
    const start = match.index ?? 0;
    if (start > last) parts.push({ text: text.slice(last, start) });
    parts.push({ url });
    last = start + url.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

export function parseText(text: string): Block[] {
  const blocks: Block[] = [];
  for (const paragraph of text.trim().split(/\n\s*\n/)) {
    let lines: Inline[][] = [];
    let items: Inline[][] = [];
    const flush = () => {
      if (lines.length) blocks.push({ kind: "p", lines });
      if (items.length) blocks.push({ kind: "ul", items });
      lines = [];
      items = [];
    };
    for (const line of paragraph.split("\n")) {
      if (!line.trim()) continue;
      if (LIST_ITEM.test(line)) {
        if (lines.length) flush();
        items.push(inlines(line.replace(LIST_ITEM, "").trim()));
      } else {
        if (items.length) flush();
        lines.push(inlines(line.trim()));
      }
    }
    flush();
  }
  return blocks;
}

function renderInlines(parts: Inline[], onLink: (url: string) => void): (Node | string)[] {
  return parts.map((part) => {
    if ("text" in part) return part.text;
    const link = h("a", { href: part.url, target: "_blank", rel: "noopener noreferrer" }, part.url);
    link.addEventListener("click", (event) => {
      event.preventDefault();
      onLink(part.url);
    });
    return link;
  });
}

/** The text as paragraphs and lists; ``onLink`` opens a link (Telegram's openLink inside Telegram). */
export function renderText(text: string, onLink: (url: string) => void): HTMLElement[] {
  return parseText(text).map((block) => {
    if (block.kind === "ul") return h("ul", {}, ...block.items.map((item) => h("li", {}, ...renderInlines(item, onLink))));
    const p = h("p", {});
    block.lines.forEach((line, i) => {
      if (i) p.append(h("br"));
      p.append(...renderInlines(line, onLink));
    });
    return p;
  });
}

// The card's start line: a date gets its label («Ближайший старт: 13.09.2026»); a sentence the catalog
// writes instead («Учебный год идёт — можно присоединиться…», «Мест нет — лист ожидания») reads on its own.
export function startLine(nextStartText: string): string {
  return /^\d/.test(nextStartText) ? `Ближайший старт: ${nextStartText}` : nextStartText;
}
