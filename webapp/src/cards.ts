// Program cards as GET /api/catalog/search and the assistant return them: facts come from the catalog.
// The price is the catalog's price_text as the API gives it (its period, «за семестр» / «за год», is the
// catalog's to state, never added here).

import { h } from "./dom";
import { startLine } from "./format";

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
  onPick?: (card: ProgramCard) => void;
}

export function renderCards(cards: ProgramCard[], actions: CardActions): HTMLElement {
  return h(
    "div",
    { class: "cards" },
    ...cards.map((card) =>
      h(
        "article",
        { class: "card", "data-program": card.id, "aria-label": card.title },
        h("h3", {}, card.title),
        card.why_match ? h("p", { class: "why" }, card.why_match) : null,
        h("p", { class: "facts" }, h("strong", { class: "price" }, card.price_text), h("br"), startLine(card.next_start_text)),
        card.usp?.length ? h("ul", {}, ...card.usp.slice(0, 3).map((u) => h("li", {}, u))) : null,
        h(
          "div",
          { class: "card-actions" },
          actions.onPick ? h("button", { class: "primary", type: "button", onclick: () => actions.onPick!(card) }, "Записаться") : null,
          h("button", { class: "link", type: "button", onclick: () => actions.onOpen(card.url) }, "Подробнее на сайте"),
        ),
      ),
    ),
  );
}
