"""The qualification funnel (grade -> goal -> subject -> format): its questions, buttons and payloads.

Both engines use it: a funnel button updates the profile directly (the model is told what was chosen),
and the offline policy asks the next open question.
"""

from __future__ import annotations

from agent.state import ConversationState
from agent.understanding import Hints
from agent.types import QuickReply

STEPS = ("grade", "goal", "subject", "format")
ANY = "any"  # "не важно": the step is answered but the criterion stays open

GOAL_LABELS = {
    "ege": "ЕГЭ",
    "oge": "ОГЭ",
    "olympiad": "Олимпиады",
    "base": "Учёба по школьной программе и выше",
    "intensive": "Интенсив перед экзаменом",
    "camp": "Лагерь",
}
SUBJECT_LABELS = {"math": "Математика", "physics": "Физика", "informatics": "Информатика", "russian": "Русский язык"}
FORMAT_LABELS = {"offline": "Очно", "online": "Онлайн", "hybrid": "Гибридный"}
LABELS = {"goal": GOAL_LABELS, "subject": SUBJECT_LABELS, "format": FORMAT_LABELS}

QUESTIONS = {
    "grade": "В каком классе учится ребёнок?",
    "goal": "Какая цель занятий?",
    "subject": "Какой предмет интересует?",
    "format": "Какой формат удобнее?",
}

def goals_for(grade: int | None) -> list[str]:
    if grade is None:
        return list(GOAL_LABELS)
    goals = ["base"]
    if grade >= 5:
        goals.append("olympiad")
    if grade in (8, 9):
        goals.append("oge")
    if grade >= 10:
        goals += ["ege", "intensive"]
    if grade >= 5:
        goals.append("camp")
    return goals


def _answered(state: ConversationState) -> set[str]:
    return set(state.flow.get("answered", []))


def mark_answered(state: ConversationState, step: str) -> None:
    answered = _answered(state) | {step}
    state.flow["answered"] = [s for s in STEPS if s in answered]


def next_step(state: ConversationState) -> str | None:
    answered = _answered(state)
    for step in STEPS:
        if getattr(state.profile, step) is None and step not in answered:
            return step
    return None


def apply_choice(state: ConversationState, payload: str) -> bool:
    """Apply a funnel button (grade:9, goal:ege, subject:any, ...); False if it is not a funnel payload."""
    step, _, value = payload.partition(":")
    if step not in STEPS or not value:
        return False
    if step == "grade":
        if not value.isdigit() or not 1 <= int(value) <= 11:
            return False
        state.profile.grade = int(value)
    elif value == ANY:
        setattr(state.profile, step, None)
    elif value in LABELS[step]:
        setattr(state.profile, step, value)
    else:
        return False
    mark_answered(state, step)
    state.flow.pop("shown_for", None)  # the criteria changed: show programs again
    return True


def apply_hints(state: ConversationState, hints: Hints, *, overwrite: bool) -> list[str]:
    """Fill funnel steps from what a message said («11 класс, ЕГЭ по физике, онлайн»); the steps changed.

    A bare funnel answer («онлайн») may change a step already answered; a question that merely names a
    value («а интенсив у вас есть?») only fills steps still open, so it never overwrites the profile."""
    changed: list[str] = []
    for step, value in hints.steps().items():
        current = getattr(state.profile, step)
        if current == value or (current is not None and not overwrite):
            continue
        if step != "grade" and value not in LABELS[step]:
            continue
        setattr(state.profile, step, value)
        mark_answered(state, step)
        changed.append(step)
    if hints.location and not state.flow.get("location"):
        state.flow["location"] = hints.location
    if changed:
        state.flow.pop("shown_for", None)
    return changed


def skip_step(state: ConversationState, step: str) -> None:
    """«Без разницы»: the step is answered, its criterion stays open."""
    if step != "grade":
        setattr(state.profile, step, None)
    mark_answered(state, step)
    state.flow.pop("shown_for", None)


def choice_label(payload: str) -> str:
    """How a funnel button reads in the transcript («Выбрано: 9 класс»)."""
    step, _, value = payload.partition(":")
    if step == "grade":
        return f"{value} класс"
    if value == ANY:
        return "не важно"
    return LABELS.get(step, {}).get(value, value)


def profile_labels(state: ConversationState, steps: list[str]) -> list[str]:
    """The profile's values for these steps as they read mid-sentence («8 класс», «лагерь», «ЕГЭ»)."""
    labels = []
    for step in steps:
        value = getattr(state.profile, step)
        if value is None:
            continue
        label = choice_label(f"{step}:{value}")
        labels.append(label if label[:2].isupper() else label[:1].lower() + label[1:])
    return labels


def question(state: ConversationState, step: str, options: list[str] | None = None) -> tuple[str, list[QuickReply]]:
    """The step's question and buttons; ``options`` are the values the catalog still offers."""
    if step == "grade":
        return QUESTIONS[step], [QuickReply(label=f"{n} класс", payload=f"grade:{n}") for n in range(1, 12)]
    if options is None:
        options = goals_for(state.profile.grade) if step == "goal" else list(LABELS[step])
    buttons = [QuickReply(label=LABELS[step][v], payload=f"{step}:{v}") for v in options if v in LABELS[step]]
    buttons.append(QuickReply(label="Не важно", payload=f"{step}:{ANY}"))
    return QUESTIONS[step], buttons
