// The assistant's bubble while it answers: a typing indicator, then a status line during tool rounds,
// then the answer growing as checked sentences arrive; `finish` puts the final reply in its place.

import { h, replaceChildren } from "./dom";

export interface LiveBubble {
  element: HTMLElement;
  status(text: string): void;
  text(text: string): void;
  finish(...content: (Node | string | null)[]): void;
}

export function liveBubble(): LiveBubble {
  const dots = h("span", { class: "typing", role: "status", "aria-label": "Помощник печатает" }, h("i"), h("i"), h("i"));
  const element = h("div", { class: "bubble bubble-assistant bubble-live" }, dots);
  let answer: HTMLParagraphElement | null = null;
  return {
    element,
    status(text) {
      if (!answer) replaceChildren(element, dots, h("span", { class: "live-status" }, text));
    },
    text(text) {
      if (!answer) {
        answer = h("p", {});
        replaceChildren(element, answer);
      }
      answer.textContent = text;
    },
    finish(...content) {
      element.classList.remove("bubble-live");
      replaceChildren(element, ...content);
    },
  };
}
