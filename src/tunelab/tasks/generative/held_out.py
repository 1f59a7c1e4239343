"""An sft run's held-out sets: what the scope guard changes on one (the answers with the guard in
front, and the guard's decisions alone), the facts an off-topic answer must not state, and the
extra sets' figures as summary keys and leaderboard columns."""

from tunelab.data.conversations import Example
from tunelab.tasks.generative.evaluate import answer_scores
from tunelab.tasks.generative.scope_guard import GuardRouting

GUARD_ALONE_KEYS = ("refusal_rate", "false_refusal_rate", "n_off_topic", "n_in_domain")
SET_FIGURES = {
    "call_accuracy": "call accuracy",
    "key_fact_hit_rate": "key facts",
    "refusal_rate": "refusals",
    "false_refusal_rate": "false refusals",
}


def guard_effect(
    examples: list[Example], answered: list[str], routing: GuardRouting, known_facts: set[str]
) -> dict:
    """Scores with the guard in front (refused questions get the refusal, the rest the LM's
    `answered` replies) and of the guard alone (its refusals, nothing generated)."""
    guarded = routing.merged(answered)
    alone = routing.merged([""] * len(answered))
    decisions = answer_scores(examples, alone, routing.refusal)
    return {
        "with_guard": answer_scores(examples, guarded, routing.refusal, known_facts),
        "guard_alone": {k: decisions[k] for k in GUARD_ALONE_KEYS},
    }


def training_facts(examples: list[Example]) -> set[str]:
    return {fact for example in examples for fact in example.facts}


def set_figures(sets: dict[str, dict]) -> dict[str, float]:
    """The extra held-out sets' figures, flat, for the summary and compare's leaderboard; the
    scored split's (test, or val in a search trial) are the summary's own."""
    flat = {}
    for name, scores in sets.items():
        if name in ("test", "val"):
            continue
        for suffix, figures in (("", scores), ("+guard", scores.get("with_guard", {}))):
            for figure in SET_FIGURES:
                if figures.get(figure) is not None:
                    flat[f"set.{name}.{figure}{suffix}"] = figures[figure]
    return flat


def set_column_title(key: str) -> str:
    """`set.casual.false_refusal_rate+guard` -> `casual false refusals + guard`."""
    _, name, figure = key.split(".", 2)
    figure, guard, _ = figure.partition("+")
    return f"{name} {SET_FIGURES[figure]}" + (" + guard" if guard else "")
