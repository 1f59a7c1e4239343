"""The scope guard of an sft run with a refusal sentence: a small classifier (in-domain vs
off-topic) trained in the same run on the run's own questions, asked before generating. The guard
alone decides the scope: an off-topic question gets the refusal sentence and never reaches the
LM; a question it lets through is answered, the LM not being allowed to open with the refusal
(else the LM's own false refusals would add to the guard's).

A fine-tuned 135M LM refuses what looks like its refusal rows and answers the rest with the
company's facts; a sentence classifier on a pretrained encoder generalises the in/out decision
far better from the same rows (docs/sft.md has the figures). The guard is a plain tunelab
classify run in `RUN/scope_guard/`, so `tunelab eval` and `predict` work on it too."""

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tunelab.artifacts import load_run
from tunelab.config import RunConfig, load_config
from tunelab.data.conversations import Example
from tunelab.run_record import RunRecord
from tunelab.tasks.classify.metrics import classify_with
from tunelab.tasks.generative.evaluate import is_refusal

GUARD_DIR = "scope_guard"
DEFAULT_THRESHOLD = 0.5  # the classifier's own decision: off-topic when more likely than not
IN_DOMAIN, OFF_TOPIC = "in_domain", "off_topic"


def write_guard_rows(path: Path, examples: list[Example], refusal: str) -> None:
    """Each training question labelled by its answer: the refusal sentence means off-topic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for example in examples:
            label = OFF_TOPIC if is_refusal(example.answer, refusal) else IN_DOMAIN
            writer.writerow([example.question, label])


def guard_config(model: str, run_dir: Path, examples: list[Example], refusal: str, seed: int):
    """The guard's own run: the small encoder's top blocks tuned on the run's questions (MiniLM,
    22M parameters, trains in about two minutes on 2 CPU cores)."""
    folder = run_dir / GUARD_DIR
    data = folder / "questions.csv"
    write_guard_rows(data, examples, refusal)
    overrides = [
        f"model.name={model}",
        f"data.path={data}",
        "data.split=[0.85,0.15,0.0]",
        f"data.test_path={data}",  # no held-out rows to spare: the test figure is a fit check
        "data.max_length=64",
        "data.overlong=truncate",
        "task.name=classify",
        "task.pooling=mean",
        "method.name=freeze",  # the top two blocks and the head: the lower blocks keep MiniLM's
        "method.k=2",  # sentence similarity (a full fine-tune refused 0.89 of the OOD set, this 0.97)
        "train.epochs=6",
        "train.batch_size=16",
        "train.lr=1.0e-4",
        f"train.seed={seed}",
        f"output.dir={guard_run_dir(run_dir)}",
    ]
    return load_config(None, overrides)


class ScopeGuard:
    """A finished guard run, loaded once; `off_topic` says which questions get `refusal`: those
    whose off-topic probability reaches `threshold` (task.scope_guard_threshold, chosen on a
    development set: scripts/choose_assistant_settings.py)."""

    def __init__(self, guard_run: Path, refusal: str, threshold: float = DEFAULT_THRESHOLD):
        self.model, self.tokenizer, self.record = load_run(guard_run)
        self.model.eval()
        self.refusal = refusal
        self.threshold = threshold

    def off_topic_probabilities(self, questions: list[str]) -> list[float]:
        if not questions:
            return []
        results = classify_with(self.model, self.tokenizer, self.record, questions)
        return [r["probs"][OFF_TOPIC] for r in results]

    def refuses(self, off_topic_probability: float) -> bool:
        return off_topic_probability >= self.threshold

    def off_topic(self, questions: list[str]) -> list[bool]:
        return [self.refuses(chance) for chance in self.off_topic_probabilities(questions)]

    def route(
        self, questions: list[str], prompts: list[str], tokenizer, add_special_tokens: bool
    ) -> "GuardRouting":
        """The policy, for `tunelab generate`/`chat`, the server and the sft evaluation alike: a
        question whose off-topic probability reaches the threshold gets the refusal sentence; the
        others are answered by the LM after their `prompts`, and may not open with the refusal's
        first token (else the LM's own false refusals would add to the guard's)."""
        chances = self.off_topic_probabilities(questions)
        refused = [self.refuses(chance) for chance in chances]
        answered = [prompt for prompt, no in zip(prompts, refused, strict=True) if not no]
        opening = (
            self.refusal_opening(tokenizer, answered[0], add_special_tokens) if answered else None
        )
        return GuardRouting(chances, refused, self.refusal, opening)

    def refusal_opening(self, tokenizer, prompt: str, add_special_tokens: bool) -> int:
        """The token the LM writes first when it refuses after `prompt`, tokenized in place (a
        word's first token depends on what precedes it). Every prompt of a template ends the same
        way (the assistant's turn opening), so one prompt's opening holds for a batch."""
        before = tokenizer(prompt, add_special_tokens=add_special_tokens).input_ids
        whole = tokenizer(prompt + self.refusal, add_special_tokens=add_special_tokens).input_ids
        return whole[len(before)]


@dataclass(frozen=True)
class GuardRouting:
    """The guard's decision on a batch of questions: which get `refusal` without reaching the
    LM, and the token the LM may not open the others with (None when no guard or none is let
    through)."""

    chances: list[float]  # each question's off-topic probability
    refused: list[bool]
    refusal: str
    banned_opening: int | None

    @classmethod
    def unguarded(cls, count: int) -> "GuardRouting":
        """No guard: every question is answered by the LM, and may open with anything."""
        return cls([0.0] * count, [False] * count, "", None)

    def answered(self, items: Sequence) -> list:
        """The items (prompts, examples) of the questions let through, in order."""
        return [item for item, no in zip(items, self.refused, strict=True) if not no]

    def merged(self, generated: Sequence[str]) -> list[str]:
        """The replies in question order: the refusal where refused, else the LM's answers (one
        per question let through, in order)."""
        answers = iter(generated)
        return [self.refusal if no else next(answers) for no in self.refused]


def guard_run_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / GUARD_DIR / "run"


def load_guard(run_dir: str | Path, record: RunRecord) -> ScopeGuard | None:
    """The scope guard a finished sft run trained, or None when it trained none."""
    settings = record.task_settings
    if not settings.get("scope_guard"):
        return None
    threshold = settings.get("scope_guard_threshold", DEFAULT_THRESHOLD)
    return ScopeGuard(guard_run_dir(run_dir), settings["refusal"], threshold)


def side_run_config(config: RunConfig, run_dir: Path, train: list[Example]) -> RunConfig | None:
    settings = config.task
    if not getattr(settings, "scope_guard", None) or not settings.refusal:
        return None
    return guard_config(settings.scope_guard, run_dir, train, settings.refusal, config.train.seed)


# Thresholds tried when choosing one on a development set: every 0.05 from 0.05 to 0.95.
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def guard_figures(rows: list[dict], refusal: str, threshold: float) -> dict[str, float | None]:
    """The guard's refusals of one set's off-topic rows and false refusals of its in-domain
    rows at `threshold`, from the off-topic probabilities its evaluation recorded per row."""
    off = [r["guard_off_topic"] >= threshold for r in rows if is_refusal(r["reference"], refusal)]
    domain = [
        r["guard_off_topic"] >= threshold for r in rows if not is_refusal(r["reference"], refusal)
    ]
    return {
        "refusal_rate": sum(off) / len(off) if off else None,
        "false_refusal_rate": sum(domain) / len(domain) if domain else None,
    }


def threshold_curve(sets: dict[str, list[dict]], refusal: str) -> list[dict]:
    """Each threshold's figures on every set (a set's answer rows, scored with the guard)."""
    return [
        {"threshold": t, **{name: guard_figures(rows, refusal, t) for name, rows in sets.items()}}
        for t in THRESHOLDS
    ]


def choose_threshold(curve: list[dict], max_false_refusal: float) -> dict:
    """The threshold that refuses the most off-topic rows (mean over the sets that have them)
    while no set's false refusals exceed `max_false_refusal`; ties go to fewer false refusals,
    then to the classifier's own 0.5. When none keeps the false refusals in bounds, the one with
    the fewest (`feasible` is then False)."""

    def worst_false(point: dict) -> float:
        return max(point[s]["false_refusal_rate"] or 0.0 for s in point if s != "threshold")

    def refused(point: dict) -> float:
        rates = [point[s]["refusal_rate"] for s in point if s != "threshold"]
        rates = [r for r in rates if r is not None]
        return sum(rates) / len(rates) if rates else 0.0

    feasible = [p for p in curve if worst_false(p) <= max_false_refusal]
    if not feasible:
        best = min(curve, key=lambda p: (worst_false(p), abs(p["threshold"] - DEFAULT_THRESHOLD)))
        return {**best, "feasible": False}
    best = max(
        feasible,
        key=lambda p: (refused(p), -worst_false(p), -abs(p["threshold"] - DEFAULT_THRESHOLD)),
    )
    return {**best, "feasible": True}
