"""What the scope guard changes on a held-out set of an sft run: the answers with the guard in
front, and the guard's decisions alone; and the facts an off-topic answer must not state."""

from tunelab.data.conversations import Example
from tunelab.tasks.generative.evaluate import answer_scores
from tunelab.tasks.generative.scope_guard import GuardRouting

GUARD_ALONE_KEYS = ("refusal_rate", "false_refusal_rate", "n_off_topic", "n_in_domain")


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
