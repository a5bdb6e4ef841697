import { describe, expect, it } from "vitest";
import * as flow from "./steps";

const walk = (...answers: string[]): flow.FlowState => answers.reduce(flow.choose, flow.initialState());

describe("qualification steps", () => {
  it("goes grade → goal → subject → format → results", () => {
    const steps = [flow.initialState().step];
    let state = flow.initialState();
    for (const answer of ["10", "ege", "math", "online"]) {
      state = flow.choose(state, answer);
      steps.push(state.step);
    }
    expect(steps).toEqual(["grade", "goal", "subject", "format", "results"]);
    expect(state.profile).toEqual({ grade: 10, goal: "ege", subject: "math", format: "online" });
  });

  it("offers goals that exist for the grade", () => {
    expect(flow.goalsForGrade(3)).toEqual(["base", "camp"]);
    expect(flow.goalsForGrade(9)).toContain("oge");
    expect(flow.goalsForGrade(9)).not.toContain("ege");
    expect(flow.goalsForGrade(11)).toContain("intensive");
    expect(flow.optionsFor(walk("7")).map((o) => o.value)).toEqual(["base", "olympiad", "camp"]);
  });

  it("offers Russian only for exam goals and always «Не важно» for subject and format", () => {
    expect(flow.optionsFor(walk("9", "oge")).map((o) => o.value)).toContain("russian");
    expect(flow.optionsFor(walk("6", "olympiad")).map((o) => o.value)).not.toContain("russian");
    expect(flow.optionsFor(walk("6", "olympiad")).at(-1)).toEqual({ value: flow.ANY, label: "Не важно" });
    expect(flow.optionsFor(walk("3", "base", "math")).map((o) => o.value)).toEqual(["hybrid", "online", flow.ANY]);
  });

  it("ignores an answer that is not offered", () => {
    const state = walk("5");
    expect(flow.choose(state, "ege")).toBe(state);
    expect(flow.choose(flow.initialState(), "12")).toEqual(flow.initialState());
  });

  it("goes flow.back one step at a time and clears the answer it returns to", () => {
    let state = walk("10", "ege", "math", "online");
    expect(flow.canGoBack(state)).toBe(true);
    state = flow.back(state);
    expect(state.step).toBe("format");
    expect(state.profile.format).toBeUndefined();
    state = flow.back(flow.back(flow.back(state)));
    expect(state).toEqual(flow.initialState());
    expect(flow.canGoBack(state)).toBe(false);
    expect(flow.back(state)).toBe(state);
  });

  it("forgets later answers when an earlier one changes", () => {
    const changed = flow.choose(flow.back(flow.back(walk("10", "ege", "math"))), "olympiad");
    expect(changed.profile).toEqual({ grade: 10, goal: "olympiad" });
  });

  it("moves results → lead → done, and flow.back from the form to the results", () => {
    const results = walk("11", "ege", "physics", flow.ANY);
    const lead = flow.proceedToLead(results);
    expect(lead.step).toBe("lead");
    expect(flow.back(lead).step).toBe("results");
    const done = flow.leadSent(lead);
    expect(done.step).toBe("done");
    expect(flow.canGoBack(done)).toBe(false);
    expect(flow.proceedToLead(walk("5"))).toEqual(walk("5"));
  });

  it("leaves «Не важно» out of the search and the lead", () => {
    const profile = walk("11", "ege", flow.ANY, "offline").profile;
    expect(flow.searchQuery(profile, "kmipt")).toBe("brand=kmipt&grade=11&goal=ege&format=offline");
    expect(flow.leadProfile(profile)).toEqual({ grade: 11, goal: "ege", format: "offline" });
    expect(flow.summary(profile)).toBe("11 класс · Подготовка к ЕГЭ · Очно");
  });
});
