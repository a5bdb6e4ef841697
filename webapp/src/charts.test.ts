import { describe, expect, it } from "vitest";
import { conversions } from "./charts";

describe("funnel conversions", () => {
  it("from the previous stage and from the first, in whole percent", () => {
    const stages = [{ label: "Диалоги", value: 40 }, { label: "Квалиф.", value: 30 }, { label: "Заявки", value: 3 }];
    expect(conversions(stages)).toEqual([
      { fromPrevious: null, fromFirst: null },
      { fromPrevious: 75, fromFirst: 75 },
      { fromPrevious: 10, fromFirst: 8 },
    ]);
  });

  it("an empty stage does not divide by zero", () => {
    expect(conversions([{ label: "a", value: 0 }, { label: "b", value: 0 }])).toEqual([
      { fromPrevious: null, fromFirst: null },
      { fromPrevious: 0, fromFirst: 0 },
    ]);
  });
});
