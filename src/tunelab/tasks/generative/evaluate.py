"""Evaluation of the generative tasks: perplexity on held-out tokens, and for sft the answers
themselves: ROUGE-L against the reference, key-fact hits, refusal and false-refusal rates, and on
rows with tools the share of replies that make exactly the reference's calls (or none)."""

import functools
import math
import re

import torch

from tunelab.data.conversations import Example
from tunelab.data.encode import make_loader
from tunelab.data.lm_encode import IGNORE, lm_collator
from tunelab.data.templates import adds_special_tokens, generation_prompt
from tunelab.data.tool_calls import ToolCall, parse_reply, same_calls, split_reasoning
from tunelab.generation import generate
from tunelab.progress import track
from tunelab.tasks.generative.loss import labelled_token_loss


@functools.cache
def rouge_scorer_l():
    """Built on first use: rouge_score pulls in NLTK and scipy.stats (about 1 s), which every
    `tunelab` start-up (and each compare run's process) paid though only sft evaluation reads it."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(reference: str, answer: str) -> float:
    return rouge_scorer_l().score(reference, answer)["rougeL"].fmeasure


@torch.no_grad()
def perplexity(model, examples: list[dict], tokenizer, batch_size: int) -> dict:
    """exp(mean next-token loss over the labelled tokens), weighting batches by their tokens.
    At most 8 rows a batch: the labelled positions' logits (49k wide on SmolLM2) dominate memory."""
    batch_size = min(batch_size, 8)
    loader = make_loader(  # rows of one length together: the tools val rows, 29% padding -> 2%
        examples,
        tokenizer,
        batch_size,
        shuffle=False,
        group_by_length=True,
        collate=lm_collator(tokenizer),
    )
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for batch in track(loader, f"perplexity on {len(examples)} rows"):
        batch = batch.to(device)
        predicted = int((batch["labels"][:, 1:] != IGNORE).sum())
        total += labelled_token_loss(model, batch).item() * predicted
        count += predicted
    model.train(was_training)
    loss = total / max(count, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": count}


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def is_refusal(answer: str, refusal: str) -> bool:
    """The fixed sentence said, allowing for punctuation and small wording drift."""
    if normalise(refusal) in normalise(answer):
        return True
    return rouge_l(refusal, answer) >= 0.8


def fact_hits(answer: str, facts: list[str]) -> float | None:
    if not facts:
        return None
    found = normalise(answer)
    return sum(normalise(fact) in found for fact in facts) / len(facts)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def invented(answer: str, known_facts: set[str]) -> bool:
    """An off-topic answer that states one of the domain's facts: a hallucinated company fact."""
    found = normalise(answer)
    return any(normalise(fact) in found for fact in known_facts)


def answer_scores(
    examples: list[Example], answers: list[str], refusal: str | None, known_facts=frozenset()
) -> dict:
    """Off-topic rows are those whose reference is the refusal sentence; the rest are in-domain.
    `known_facts` (every key fact of the training rows) finds invented facts in off-topic answers."""
    off_topic = [bool(refusal) and is_refusal(e.answer, refusal) for e in examples]
    refused = [bool(refusal) and is_refusal(a, refusal) for a in answers]
    domain = [i for i, off in enumerate(off_topic) if not off]
    hits = [fact_hits(answers[i], examples[i].facts) for i in domain]
    scores = {
        "n_answered": len(answers),
        "rouge_l": mean([rouge_l(examples[i].answer, answers[i]) for i in domain]),
        "key_fact_hit_rate": mean([h for h in hits if h is not None]),
    }
    if any(e.tools for e in examples):
        scores |= call_scores(examples, [parse_reply(a)[1] for a in answers])
    if refusal:
        off = [i for i, o in enumerate(off_topic) if o]
        scores["refusal_rate"] = mean([float(refused[i]) for i in off])
        scores["false_refusal_rate"] = mean([float(refused[i]) for i in domain])
        scores["n_off_topic"], scores["n_in_domain"] = len(off), len(domain)
        scores["invented_fact_rate"] = mean([float(invented(answers[i], known_facts)) for i in off])
    return scores


def call_scores(examples: list[Example], made: list[list[ToolCall]]) -> dict:
    """`call_accuracy` over every row; `no_call_rate` over the rows with tools whose reference
    answers in words (the validation stand-in for BFCL's irrelevance: a tool model that calls
    on every question scores 0 there however right its calls elsewhere)."""
    wordy = [i for i, e in enumerate(examples) if e.tools and not e.calls]
    return {
        "call_accuracy": mean(
            [float(same_calls(e.calls, m)) for e, m in zip(examples, made, strict=True)]
        ),
        "no_call_rate": mean([float(not made[i]) for i in wordy]),
        "n_no_call_due": len(wordy),
    }


def pick_rows(rows: list[dict], count: int, refusal: str | None) -> list[dict]:
    """`count` rows for the report, in-domain and off-topic taken in turn when both exist."""
    off = [r for r in rows if refusal and is_refusal(r["reference"], refusal)]
    domain = [r for r in rows if r not in off]
    picked = []
    while len(picked) < min(count, len(rows)):
        for queue in (domain, off):
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return picked


def answer_prompts(examples: list[Example], template: str, tokenizer, system: str | None):
    """Each example's conversation up to its last answer, as the LM is asked it."""
    return [
        generation_prompt(e.messages[:-1], template, tokenizer, system, e.tools) for e in examples
    ]


def evaluate_answers(
    model,
    tokenizer,
    examples: list[Example],
    template: str,
    task,
    eval_config,
    name: str = "test",
    known_facts=frozenset(),
    banned_opening: int | None = None,
) -> tuple[dict, list[dict]]:
    """Generate greedy answers for held-out questions and score them; returns (scores, rows)."""
    prompts = answer_prompts(examples, template, tokenizer, task.system)
    answers = generate(
        model,
        tokenizer,
        prompts,
        eval_config.max_new_tokens,
        eval_config.batch_size,
        add_special_tokens=adds_special_tokens(template),
        description=f"answering {len(prompts)} {name} questions",
        banned_opening=banned_opening,
    )
    return scored_answers(examples, answers, task.refusal, known_facts)


def scored_answers(
    examples: list[Example], generated: list[str], refusal: str | None, known_facts=frozenset()
) -> tuple[dict, list[dict]]:
    """A model taught to reason answers after its <think> block: the answer alone is scored,
    the reasoning kept beside it in the rows."""
    split = [split_reasoning(text) for text in generated]
    thoughts, answers = [t for t, _ in split], [a for _, a in split]
    rows = [
        {"question": e.question, "reference": e.answer, "answer": a, "facts": e.facts}
        | ({"reasoning": t} if t else {})
        for e, a, t in zip(examples, answers, thoughts, strict=True)
    ]
    return answer_scores(examples, answers, refusal, known_facts), rows
