// The user Mini App's qualification steps: grade → goal → subject → format → results → lead form.
// Pure functions over a small state object, so the step logic is unit-tested without a browser.

import { FORMAT_LABELS, GOAL_LABELS, SUBJECT_LABELS } from "./labels";

export type Step = "grade" | "goal" | "subject" | "format" | "results" | "lead" | "done";
export type Field = "grade" | "goal" | "subject" | "format";

export interface Option {
  value: string;
  label: string;
}

export interface Profile {
  grade?: number;
  goal?: string;
  subject?: string;
  format?: string;
}

export interface FlowState {
  step: Step;
  profile: Profile;
}

/** «Не важно»: the step was answered, but it narrows nothing. */
export const ANY = "any";

const QUESTION_STEPS: Field[] = ["grade", "goal", "subject", "format"];
const ORDER: Step[] = ["grade", "goal", "subject", "format", "results", "lead", "done"];

export const QUESTIONS: Record<Field, string> = {
  grade: "В каком классе учится ребёнок?",
  goal: "Какая цель занятий?",
  subject: "Какой предмет интересует?",
  format: "Какой формат удобнее?",
};

export const initialState = (): FlowState => ({ step: "grade", profile: {} });

export function goalsForGrade(grade: number): string[] {
  if (grade <= 4) return ["base", "camp"];
  if (grade <= 8) return ["base", "olympiad", "camp"];
  if (grade === 9) return ["oge", "olympiad", "camp"];
  if (grade === 10) return ["ege", "olympiad", "camp"];
  return ["ege", "intensive", "olympiad", "camp"];
}

export function subjectsFor(profile: Profile): string[] {
  const exam = profile.goal === "ege" || profile.goal === "oge" || profile.goal === "intensive";
  return exam ? ["math", "physics", "informatics", "russian"] : ["math", "physics", "informatics"];
}

export function formatsFor(profile: Profile): string[] {
  if (profile.goal === "camp") return ["offline"];
  return (profile.grade ?? 11) <= 4 ? ["hybrid", "online"] : ["online", "offline"];
}

const labelled = (values: string[], labels: Record<string, string>): Option[] =>
  values.map((value) => ({ value, label: labels[value] ?? value }));

const anyOption: Option = { value: ANY, label: "Не важно" };

export function optionsFor(state: FlowState): Option[] {
  const { step, profile } = state;
  switch (step) {
    case "grade":
      return Array.from({ length: 11 }, (_, i) => ({ value: String(i + 1), label: `${i + 1} класс` }));
    case "goal":
      return labelled(goalsForGrade(profile.grade ?? 11), GOAL_LABELS);
    case "subject":
      return [...labelled(subjectsFor(profile), SUBJECT_LABELS), anyOption];
    case "format":
      return [...labelled(formatsFor(profile), FORMAT_LABELS), anyOption];
    default:
      return [];
  }
}

function nextStep(step: Step): Step {
  return ORDER[Math.min(ORDER.indexOf(step) + 1, ORDER.length - 1)];
}

/** Answer the current question; an answer not offered for this step is ignored. */
export function choose(state: FlowState, value: string): FlowState {
  const step = state.step;
  if (!isQuestion(step) || !optionsFor(state).some((o) => o.value === value)) return state;
  const profile: Profile = { ...state.profile };
  if (step === "grade") profile.grade = Number(value);
  else profile[step] = value;
  // A later answer may no longer fit (e.g. ЕГЭ after changing the grade to 7): forget what follows.
  for (const later of QUESTION_STEPS.slice(QUESTION_STEPS.indexOf(step) + 1)) delete profile[later];
  return { step: nextStep(step), profile };
}

export function proceedToLead(state: FlowState): FlowState {
  return state.step === "results" ? { ...state, step: "lead" } : state;
}

/** The lead form straight from the chat (the assistant asked for a contact): whatever is known so far. */
export function leadFromChat(state: FlowState): FlowState {
  return { step: "lead", profile: { ...state.profile } };
}

export function leadSent(state: FlowState): FlowState {
  return state.step === "lead" ? { ...state, step: "done" } : state;
}

/** Telegram's BackButton shows while there is somewhere to go back to. */
export function canGoBack(state: FlowState): boolean {
  return state.step !== "grade" && state.step !== "done";
}

/** One step back; the answer to the step we return to is cleared so it can be given again. */
export function back(state: FlowState): FlowState {
  if (!canGoBack(state)) return state;
  const previous = ORDER[ORDER.indexOf(state.step) - 1];
  const profile: Profile = { ...state.profile };
  if (isQuestion(previous)) delete profile[previous];
  return { step: previous, profile };
}

export function isQuestion(step: Step): step is Field {
  return (QUESTION_STEPS as Step[]).includes(step);
}

/** Query string for GET /api/catalog/search: «Не важно» narrows nothing, so it is left out. */
export function searchQuery(profile: Profile, brand: string): string {
  const params = new URLSearchParams({ brand });
  if (profile.grade) params.set("grade", String(profile.grade));
  for (const key of ["goal", "subject", "format"] as const) {
    const value = profile[key];
    if (value && value !== ANY) params.set(key, value);
  }
  return params.toString();
}

/** The profile as POST /api/leads takes it. */
export function leadProfile(profile: Profile): Profile {
  const result: Profile = {};
  if (profile.grade) result.grade = profile.grade;
  for (const key of ["goal", "subject", "format"] as const) {
    const value = profile[key];
    if (value && value !== ANY) result[key] = value;
  }
  return result;
}

export function summary(profile: Profile): string {
  const parts: string[] = [];
  if (profile.grade) parts.push(`${profile.grade} класс`);
  if (profile.goal) parts.push(GOAL_LABELS[profile.goal] ?? profile.goal);
  if (profile.subject && profile.subject !== ANY) parts.push(SUBJECT_LABELS[profile.subject] ?? profile.subject);
  if (profile.format && profile.format !== ANY) parts.push(FORMAT_LABELS[profile.format] ?? profile.format);
  return parts.join(" · ");
}
