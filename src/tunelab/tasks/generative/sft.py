"""sft: supervised instruction / Q&A fine-tuning; loss on the response tokens only by default
(the prompt positions carry label -100). Scored by held-out perplexity and generated answers:
ROUGE-L, key facts, refusal and false-refusal rates (seed 003), and a general set (forgetting).
zero_shot / few_shot prompt the base model as baselines."""

import random
from dataclasses import replace
from typing import Literal

from pydantic import Field
from torch import nn

from tunelab.config import split_seed
from tunelab.config.settings import PromptedTaskSettings
from tunelab.data.conversations import Example, read_examples
from tunelab.data.encode import padding_share
from tunelab.data.lm_prepare import SftFormat, encode_examples, prepare_sft
from tunelab.data.streaming.corpus import streams
from tunelab.data.streaming.sft import prepare_sft_arrow
from tunelab.data.templates import adds_special_tokens
from tunelab.errors import TunelabError
from tunelab.methods import VIRTUAL_TOKENS, MethodSpec
from tunelab.tasks.base import Column, Score, prompt_record, register_task
from tunelab.tasks.generative.common import GenerativeTask, adapts_a_causal_lm
from tunelab.tasks.generative.evaluate import (
    answer_prompts,
    evaluate_answers,
    perplexity,
    pick_rows,
)
from tunelab.tasks.generative.held_out import (
    guard_effect,
    set_column_title,
    set_figures,
    training_facts,
)
from tunelab.tasks.generative.scope_guard import (
    DEFAULT_THRESHOLD,
    GuardRouting,
    ScopeGuard,
    side_run_config,
)

# The figures that sum a run up, best first: the first one the data yields is the headline.
HEADLINES = (
    Score("call_accuracy"),  # rows with tools: the calls are what the tuning is for
    Score("key_fact_hit_rate"),
    Score("rouge_l"),
    Score("perplexity", higher_is_better=False),
)
SCORES = (*(s.name for s in HEADLINES), "no_call_rate", "refusal_rate", "false_refusal_rate")


# The figures of each extra held-out set (eval.test_sets) that compare shows, by column title.
class SftSettings(PromptedTaskSettings):
    name: Literal["sft"] = "sft"
    train_on_prompt: bool = Field(
        False, description="Also learn the prompt tokens (default: response tokens only)."
    )
    reasoning: Literal["train", "mask", "drop"] = Field(
        "train",
        description="An answer's reasoning (`reasoning_content`, or <think> opening it): `train` "
        "learns it with the answer (the model reasons before answering); `mask` keeps it in the "
        "text but out of the loss (the answer learned given the reasoning; the model is not "
        "taught to reason); `drop` removes it from the data (answers only).",
    )
    packing: bool = Field(
        False,
        description="Pack several examples into each row of data.max_length; each still sees "
        "only itself (position ids restart per example, the attention mask is block-diagonal).",
    )
    refusal: str | None = Field(
        None,
        description="The fixed refusal sentence for off-topic questions (seed 003); test rows "
        "whose reference is this sentence count as off-topic.",
    )
    scope_guard: str | None = Field(
        None,
        description="With `refusal`: a small classifier model (e.g. minilm-l6) trained in the "
        "same run on the run's questions (in-domain vs off-topic); generate, chat and serve "
        "answer the questions it calls off-topic with the refusal, without generating.",
    )
    scope_guard_threshold: float = Field(
        DEFAULT_THRESHOLD,
        gt=0,
        lt=1,
        description="The guard's off-topic probability from which a question is refused; "
        "choose it on a development set (docs/sft.md), never on the test sets.",
    )


def with_shots(examples: list[Example], shots: list[dict]) -> list[Example]:
    return [replace(e, messages=[*shots, *e.messages]) for e in examples]


@register_task
class SftTask(GenerativeTask):
    name = "sft"
    scores_on_val = True  # eval.split=val: compare's search tunes on the validation rows
    settings = SftSettings
    score = HEADLINES[0]
    columns = (
        Column("rouge_l", "ROUGE-L"),
        Column("call_accuracy", "call accuracy", "{:.3f}"),
        Column("no_call_rate", "no call where none is due", "{:.3f}"),
        Column("refusal_rate", "refusals (off-topic)", "{:.3f}"),
        Column("false_refusal_rate", "false refusals", "{:.3f}"),
        Column("general_rouge_l_before", "general ROUGE-L before"),
        Column("general_rouge_l", "general ROUGE-L after"),
        Column("general_perplexity_before", "general ppl before", "{:.2f}"),
        Column("general_perplexity", "general ppl after", "{:.2f}"),
    )

    @classmethod
    def accepts(cls, method: MethodSpec) -> bool:
        return adapts_a_causal_lm(method) or not method.trains  # prompting: the baselines

    @classmethod
    def columns_for(cls, summary: dict) -> tuple[Column, ...]:
        """One column per figure of each extra held-out set (`set.NAME.FIGURE[+guard]` keys)."""
        keys = [k for k in summary if k.startswith("set.")]
        return cls.columns + tuple(Column(k, set_column_title(k), "{:.2f}") for k in keys)

    def prepare(self) -> dict:
        settings, seed = self.config.task, split_seed(self.config)
        if settings.packing and self.run.method.can(VIRTUAL_TOKENS):
            raise TunelabError(
                f"task.packing: {self.config.method.name} puts its virtual tokens before each "
                "row, where packed examples would share them; set task.packing=false"
            )
        self.format = SftFormat(
            settings.template,
            settings.system,
            settings.train_on_prompt,
            settings.packing,
            settings.reasoning,
        )
        self.data = self.read_splits(seed)
        train = self.config.train  # what packing saves: the padding of epoch 1's batches
        self.data.summary["splits"]["train"]["padding_share"] = padding_share(
            self.data.encoded["train"],
            train.batch_size,
            train.group_by_length is not False,
            seed + 1,
        )
        self.general = self.prepare_general()
        self.shots = self.few_shot_messages()
        tests = self.config.eval.test_sets if self.config.eval.split == "test" else {}
        self.held_out = {name: read_examples(path) for name, path in tests.items()}
        self.known_facts = training_facts(self.data.examples["train"])
        self.guard: ScopeGuard | None = None
        return self.data.summary

    def read_splits(self, seed: int):
        """Encoded splits; a search trial (eval.split=val) never opens the test files."""
        if not streams(self.config.data):
            return prepare_sft(
                self.config.data,
                self.format,
                self.tokenizer,
                seed,
                self.config.eval.split == "test",
            )
        if self.config.eval.split == "val":
            raise TunelabError(
                "eval.split=val: a streamed sft set is scored on its test split only"
            )
        return prepare_sft_arrow(self.config.data, self.format, self.tokenizer, seed)

    def side_run(self):
        """The scope guard's classify run, when task.scope_guard asks for one."""
        return side_run_config(self.config, self.run.run_dir, self.data.examples["train"])

    def use_side_run(self, run_dir) -> None:
        settings = self.config.task
        self.guard = ScopeGuard(run_dir, settings.refusal, settings.scope_guard_threshold)

    def prepare_general(self) -> tuple[list[Example], list[dict]] | None:
        """The general held-out set (eval.general): its questions and encoded references."""
        config = self.config.eval
        if not config.general:
            return None
        rows = read_examples(config.general)
        rows = random.Random(split_seed(self.config)).sample(
            rows, min(len(rows), config.general_limit)
        )
        encoded = encode_examples(
            rows, self.tokenizer, self.format, self.data.template, self.config.data
        )
        return rows, encoded.examples

    def few_shot_messages(self) -> list[dict]:
        """Prompting baselines: k seeded training conversations shown before each question."""
        if self.run.method.trains:
            return []
        train = self.data.examples["train"]
        shots = min(self.config.method.shots, len(train))
        picked = random.Random(split_seed(self.config)).sample(train, shots)
        return [message for example in picked for message in example.messages]

    def answer_scores(
        self, model: nn.Module, examples: list[Example], name: str, banned: int | None = None
    ):
        return evaluate_answers(
            model,
            self.tokenizer,
            with_shots(examples, self.shots),
            self.data.template,
            self.config.task,
            self.config.eval,
            name,
            self.known_facts,
            banned,
        )

    def score_set(self, model: nn.Module, examples: list[Example], name: str) -> dict:
        """Scores of one held-out set, with and without the scope guard when there is one."""
        scores, rows = self.answer_scores(model, examples, name)
        result = {**scores, "answers": rows}
        if self.guard is not None:
            routing = self.route(examples)
            for row, chance in zip(rows, routing.chances, strict=True):
                row["guard_off_topic"] = round(chance, 4)  # a threshold's figures, afterwards
            answered = self.let_through(model, examples, [row["answer"] for row in rows], routing)
            result.update(guard_effect(examples, answered, routing, self.known_facts))
        return result

    def route(self, examples: list[Example]) -> GuardRouting:
        template, system = self.data.template, self.config.task.system
        prompts = answer_prompts(with_shots(examples, self.shots), template, self.tokenizer, system)
        questions = [example.question for example in examples]
        return self.guard.route(questions, prompts, self.tokenizer, adds_special_tokens(template))

    def let_through(
        self, model: nn.Module, examples: list[Example], answers: list[str], routing: GuardRouting
    ) -> list[str]:
        """The LM's answers to the questions the guard lets through, which may not open with the
        refusal's first token (banned at step one, as `generate` and the server do). A greedy
        answer that opened otherwise would not change: only the others are generated again."""
        if routing.banned_opening is None:
            return []  # every question refused
        start = self.tokenizer.decode([routing.banned_opening]).strip()
        answered = routing.answered(list(range(len(examples))))
        redo = [i for i in answered if answers[i].startswith(start)]
        if redo:
            again = [examples[i] for i in redo]
            _, rows = self.answer_scores(model, again, "let-through", routing.banned_opening)
            for i, row in zip(redo, rows, strict=True):
                answers[i] = row["answer"]
        return [answers[i] for i in answered]

    def evaluate(self, model: nn.Module) -> dict:
        """Held-out perplexity, generated answers and their scores, and the general set."""
        batch = self.config.eval.batch_size
        split = self.config.eval.split
        result = perplexity(model, self.data.encoded[split], self.tokenizer, batch)
        held = self.data.examples[split][: self.config.eval.generate_limit]
        scored = self.score_set(model, held, split)
        rows = scored["answers"]
        result.update(scored)
        result["sets"] = {split: {k: v for k, v in scored.items() if k != "answers"}}
        for name, examples in self.held_out.items():
            scored = self.score_set(model, examples, name)
            for row, example in zip(scored["answers"], examples, strict=True):
                row["source"] = example.source
            result["sets"][name] = scored
        result["examples"] = pick_rows(
            list(rows), self.config.eval.examples, self.config.task.refusal
        )
        if self.general is not None:
            rows, encoded = self.general
            scores, _ = self.answer_scores(model, rows, "general")
            result["general"] = {
                "rouge_l": scores["rouge_l"],
                **perplexity(model, encoded, self.tokenizer, batch),
            }
        return result

    def scores(self, before: dict, after: dict) -> dict:
        headline = next(s for s in HEADLINES if after.get(s.name) is not None)
        split = self.config.eval.split
        summary = {
            "score_name": headline.name if split == "test" else f"val_{headline.name}",
            "higher_is_better": headline.higher_is_better,
            "score_before": before[headline.name],
            "score": after[headline.name],
            "scored_on": split,
        }
        for key in SCORES:
            if after.get(key) is not None:
                summary[f"{key}_before"], summary[key] = before[key], after[key]
        for key in ("rouge_l", "perplexity") if "general" in after else ():
            summary[f"general_{key}_before"] = before["general"][key]
            summary[f"general_{key}"] = after["general"][key]
        return summary | set_figures(after.get("sets", {}))

    def record(self) -> dict:
        return {**prompt_record(self.config, self.data.template), "shots": self.shots}
