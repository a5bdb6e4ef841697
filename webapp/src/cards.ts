// Program cards as GET /api/catalog/search and the assistant return them: facts come from the catalog.

import { h } from "./dom";

export interface ProgramCard {
  id: string;
  title: string;
  url: string;
  usp?: string[];
  price_text: string;
  next_start_text: string;
  why_match: string;
}

interface CardActions {
  onOpen: (url: string) => void;
  onPick?: (id: string) => void;
}

export function renderCards(cards: ProgramCard[], actions: CardActions): HTMLElement {
  return h(
    "div",
    { class: "cards" },
    ...cards.map((card) =>
      h(
        "article",
        { class: "card", "data-program": card.id },
        h("h3", {}, card.title),
        h("p", { class: "why" }, card.why_match),
        h("p", { class: "facts" }, h("strong", {}, card.price_text), h("br"), `Ближайший старт: ${card.next_start_text}`),
        card.usp?.length ? h("ul", {}, ...card.usp.slice(0, 3).map((u) => h("li", {}, u))) : null,
        h(
          "div",
          { class: "card-actions" },
          actions.onPick ? h("button", { class: "primary", onclick: () => actions.onPick!(card.id) }, "Записаться") : null,
          h("button", { class: "link", onclick: () => actions.onOpen(card.url) }, "Подробнее на сайте"),
        ),
      ),
    ),
  );
}
