import { describe, expect, it } from "vitest";
import {
  ANY,
  back,
  canGoBack,
  choose,
  goalsForGrade,
  initialState,
  leadProfile,
  leadSent,
  optionsFor,
  proceedToLead,
  searchQuery,
  summary,
  type FlowState,
} from "./steps";

const walk = (...answers: string[]): FlowState => answers.reduce(choose, initialState());

describe("qualification steps", () => {
  it("goes grade → goal → subject → format → results", () => {
    const steps = [initialState().step];
    let state = initialState();
    for (const answer of ["10", "ege", "math", "online"]) {
      state = choose(state, answer);
      steps.push(state.step);
    }
    expect(steps).toEqual(["grade", "goal", "subject", "format", "results"]);
    expect(state.profile).toEqual({ grade: 10, goal: "ege", subject: "math", format: "online" });
  });

  it("offers goals that exist for the grade", () => {
    expect(goalsForGrade(3)).toEqual(["base", "camp"]);
    expect(goalsForGrade(9)).toContain("oge");
    expect(goalsForGrade(9)).not.toContain("ege");
    expect(goalsForGrade(11)).toContain("intensive");
    expect(optionsFor(walk("7")).map((o) => o.value)).toEqual(["base", "olympiad", "camp"]);
  });

  it("offers Russian only for exam goals and always «Не важно» for subject and format", () => {
    expect(optionsFor(walk("9", "oge")).map((o) => o.value)).toContain("russian");
    expect(optionsFor(walk("6", "olympiad")).map((o) => o.value)).not.toContain("russian");
    expect(optionsFor(walk("6", "olympiad")).at(-1)).toEqual({ value: ANY, label: "Не важно" });
    expect(optionsFor(walk("3", "base", "math")).map((o) => o.value)).toEqual(["hybrid", "online", ANY]);
  });

  it("ignores an answer that is not offered", () => {
    const state = walk("5");
    expect(choose(state, "ege")).toBe(state);
    expect(choose(initialState(), "12")).toEqual(initialState());
  });

  it("goes back one step at a time and clears the answer it returns to", () => {
    let state = walk("10", "ege", "math", "online");
    expect(canGoBack(state)).toBe(true);
    state = back(state);
    expect(state.step).toBe("format");
    expect(state.profile.format).toBeUndefined();
    state = back(back(back(state)));
    expect(state).toEqual(initialState());
    expect(canGoBack(state)).toBe(false);
    expect(back(state)).toBe(state);
  });

  it("forgets later answers when an earlier one changes", () => {
    const changed = choose(back(back(walk("10", "ege", "math"))), "olympiad");
    expect(changed.profile).toEqual({ grade: 10, goal: "olympiad" });
  });

  it("moves results → lead → done, and back from the form to the results", () => {
    const results = walk("11", "ege", "physics", ANY);
    const lead = proceedToLead(results);
    expect(lead.step).toBe("lead");
    expect(back(lead).step).toBe("results");
    const done = leadSent(lead);
    expect(done.step).toBe("done");
    expect(canGoBack(done)).toBe(false);
    expect(proceedToLead(walk("5"))).toEqual(walk("5"));
  });

  it("leaves «Не важно» out of the search and the lead", () => {
    const profile = walk("11", "ege", ANY, "offline").profile;
    expect(searchQuery(profile, "kmipt")).toBe("brand=kmipt&grade=11&goal=ege&format=offline");
    expect(leadProfile(profile)).toEqual({ grade: 11, goal: "ege", format: "offline" });
    expect(summary(profile)).toBe("11 класс · Подготовка к ЕГЭ · Очно");
  });
});
