"""The seed-003 scope guard: trained in the same run, it gates generation (an off-topic question
never reaches the LM), and extra held-out sets are scored on their own, with and without it."""

import json
import time

import openai
import pytest
import torch
from tests.lm_helpers import QA, STORIES, write_jsonl
from tests.serve_helpers import live_server

from tunelab.assistant import load_assistant
from tunelab.data.conversations import Example
from tunelab.pipeline import load_config, run
from tunelab.report.leaderboard import collect_row, write_leaderboard
from tunelab.serve.app import ServeLimits
from tunelab.serve.catalog import load_catalog
from tunelab.serve.rows import Job, RowSampler
from tunelab.tasks.generative.evaluate import answer_scores
from tunelab.tasks.generative.scope_guard import (
    DEFAULT_THRESHOLD,
    ScopeGuard,
    choose_threshold,
    guard_figures,
    guard_run_dir,
    threshold_curve,
)

REFUSAL = "I only talk about animals."
OFF_TOPIC = [
    "How do I fix my bike?",
    "What is the capital of France?",
    "Write a poem about rain.",
    "How much is a train ticket?",
    "What is two plus two?",
    "Who wrote Hamlet?",
]


@pytest.fixture(scope="module")
def guarded_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("guard")
    domain = [{"question": q, "answer": a, "facts": [a.split()[-1].strip(".")]} for q, a in QA]
    off = [{"question": q, "answer": REFUSAL, "source": "toy"} for q in OFF_TOPIC]
    train = write_jsonl(tmp / "train.jsonl", (domain + off) * 3)
    test = write_jsonl(tmp / "test.jsonl", domain[:3] + off[:3])
    ood = write_jsonl(
        tmp / "ood.jsonl",
        [{"question": "whats the weather in rome", "answer": REFUSAL, "source": "casual"}],
    )
    overrides = [
        f"model.name={STORIES}",
        "task.name=sft",
        "task.template=qa",
        f"task.refusal={REFUSAL}",
        "task.scope_guard=minilm-l6",
        f"data.path={train}",
        f"data.test_path={test}",
        "data.split=[0.9,0.1,0.0]",
        "method.name=lora",
        "train.epochs=1",
        "train.batch_size=8",
        "eval.max_new_tokens=8",
        f"eval.test_sets={{ood: {ood}}}",
        f"output.dir={tmp / 'run'}",
    ]
    run(load_config(None, overrides))
    return tmp / "run"


def test_the_guard_is_its_own_classify_run_that_separates_the_questions(guarded_run):
    guard = guarded_run / "scope_guard" / "run"
    record = json.loads((guard / "run_info.json").read_text())
    assert record["task"] == "classify" and record["labels"] == ["in_domain", "off_topic"]
    assert json.loads((guard / "eval_after.json").read_text())["accuracy"] >= 0.9


def test_an_off_topic_question_never_reaches_the_lm(guarded_run):
    assistant = load_assistant(guarded_run)
    asked = []
    generate = assistant.reply
    assistant.reply = lambda prompts, *a, **k: asked.extend(prompts) or generate(prompts, *a, **k)
    answers = assistant.answer([OFF_TOPIC[1], QA[0][0], OFF_TOPIC[1]], max_new_tokens=8)
    assert answers[0] == answers[2] == REFUSAL and answers[1] != REFUSAL  # each in its place
    assert len(asked) == 1 and QA[0][0] in asked[0] and OFF_TOPIC[1] not in asked[0]


def test_a_question_let_through_is_answered_not_refused(guarded_run):
    assistant = load_assistant(guarded_run)
    guard = assistant.guard
    passed = next(q for q, _ in QA if not guard.off_topic([q])[0])
    prompt = assistant.prompt([{"role": "user", "content": passed}])
    opening = guard.refusal_opening(assistant.tokenizer, prompt, True)
    assert REFUSAL.startswith(assistant.tokenizer.decode([opening]).strip())
    inputs = assistant.tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        first, second = assistant.model(**inputs).logits[0, -1].topk(2).indices.tolist()
    text = [
        assistant.tokenizer.decode([t], skip_special_tokens=True).strip() for t in (first, second)
    ]
    assert text[0] != text[1]
    assert assistant.reply([prompt], max_new_tokens=1)[0] == text[0]  # the LM's own choice ...
    banned = assistant.reply([prompt], max_new_tokens=1, banned_opening=first)[0]
    assert banned == text[1]  # ... is ruled out when banned: the runner-up is written
    seen = {}
    reply = assistant.reply
    assistant.reply = lambda prompts, *a, **k: seen.update(k) or reply(prompts, *a, **k)
    assistant.answer([passed], max_new_tokens=4)
    assert seen["banned_opening"] == opening  # the refusal's opening, on what the guard let through


def test_the_server_bans_the_opening_at_a_rows_first_step_only():
    job = Job(prompt_ids=[1], pool_key=0, adapter=None, tokenizer=None, max_tokens=4)
    job.banned_opening = 3
    first = RowSampler([job])(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 8))
    assert first[0, 3] == float("-inf") and first[0, 2] == 0.0
    job.tokens.append(5)
    later = RowSampler([job])(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 8))
    assert later[0, 3] == 0.0


def test_held_out_sets_are_scored_apart_with_and_without_the_guard(guarded_run):
    after = json.loads((guarded_run / "eval_after.json").read_text())
    assert set(after["sets"]) == {"test", "ood"}
    ood = after["sets"]["ood"]
    assert ood["n_off_topic"] == 1 and ood["n_in_domain"] == 0
    assert ood["answers"][0]["source"] == "casual"
    assert set(ood["guard_alone"]) >= {"refusal_rate", "false_refusal_rate"}
    test = after["sets"]["test"]
    assert test["n_off_topic"] == 3 and test["guard_alone"]["refusal_rate"] == 1.0
    assert test["with_guard"]["refusal_rate"] == 1.0
    assert "Scope" in (guarded_run / "report.md").read_text()


def test_compare_shows_each_extra_sets_figures_with_and_without_the_guard(guarded_run, tmp_path):
    path, table = write_leaderboard([collect_row("guarded", guarded_run)], tmp_path)
    header = table.splitlines()[0]
    assert "| ood refusals |" in header and "| ood refusals + guard |" in header
    row = json.loads((tmp_path / "leaderboard.json").read_text())[0]
    ood = json.loads((guarded_run / "eval_after.json").read_text())["sets"]["ood"]
    assert row["set.ood.refusal_rate+guard"] == ood["with_guard"]["refusal_rate"]


def test_an_off_topic_answer_that_states_a_domain_fact_counts_as_invented():
    examples = [
        Example([{"role": "user", "content": "Who painted it?"},
                 {"role": "assistant", "content": REFUSAL}], 1, "t", []),
        Example([{"role": "user", "content": "What is the bus fare?"},
                 {"role": "assistant", "content": REFUSAL}], 2, "t", []),
    ]  # fmt: skip
    answers = ["It was painted by Ingrid Maelstrom.", REFUSAL]
    scores = answer_scores(examples, answers, REFUSAL, {"Ingrid Maelstrom", "1987"})
    assert scores["invented_fact_rate"] == 0.5 and scores["refusal_rate"] == 0.5


def test_the_server_refuses_through_the_guard_without_generating(guarded_run):
    catalog = load_catalog([f"shop={guarded_run}"])
    with live_server(catalog, ServeLimits()) as (url, server):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none")
        messages = [{"role": "user", "content": OFF_TOPIC[1]}]
        reply = client.chat.completions.create(model="shop", messages=messages, max_tokens=8)
        assert reply.choices[0].message.content == REFUSAL
        assert reply.usage.completion_tokens > 0 and server.metrics.generated._value.get() == 0
        stream = client.chat.completions.create(
            model="shop", messages=messages, max_tokens=8, stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == REFUSAL
        assert server.metrics.generated._value.get() == 0  # the LM was never asked
        guard = catalog.models["shop"].guard
        passed = next(q for q, _ in QA if not guard.off_topic([q])[0])  # one it lets through
        asked = [{"role": "user", "content": passed}]
        client.chat.completions.create(model="shop", messages=asked, max_tokens=8)
        deadline = time.monotonic() + 5  # the batch's metrics land just after its answer
        while server.metrics.generated._value.get() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.metrics.generated._value.get() > 0


def test_the_threshold_decides_and_the_recorded_chances_replay_the_guards_decisions(guarded_run):
    """Each scored row keeps the guard's off-topic probability: at the run's threshold (0.5) they
    give back the guard's own figures, and a threshold just above a question's chance lets it
    through, which is what choosing the threshold on a development set relies on."""
    after = json.loads((guarded_run / "eval_after.json").read_text())
    replayed = guard_figures(after["answers"], REFUSAL, DEFAULT_THRESHOLD)
    alone = after["sets"]["test"]["guard_alone"]
    assert replayed["refusal_rate"] == alone["refusal_rate"]
    assert replayed["false_refusal_rate"] == alone["false_refusal_rate"]
    guard = load_assistant(guarded_run).guard
    assert guard.threshold == DEFAULT_THRESHOLD
    chance = guard.off_topic_probabilities([OFF_TOPIC[1]])[0]
    assert ScopeGuard(guard_run_dir(guarded_run), REFUSAL, chance).off_topic([OFF_TOPIC[1]]) == [
        True
    ]
    above = min(chance + 1e-3, 0.9999)
    assert ScopeGuard(guard_run_dir(guarded_run), REFUSAL, above).off_topic([OFF_TOPIC[1]]) == [
        chance >= above
    ]


def rows_with(chances: list[float], off_topic: bool) -> list[dict]:
    reference = REFUSAL if off_topic else "Cats purr."
    return [{"reference": reference, "guard_off_topic": c} for c in chances]


def test_the_chosen_threshold_refuses_most_within_the_false_refusal_bound():
    sets = {
        "written": rows_with([0.1, 0.2, 0.3, 0.6], False) + rows_with([0.4, 0.7, 0.9], True),
        "unseen": rows_with([0.55, 0.8], True),
    }
    chosen = choose_threshold(threshold_curve(sets, REFUSAL), max_false_refusal=0.05)
    # 0.6 is an in-domain row's chance: only thresholds above it keep false refusals at 0; of
    # those, 0.65 to 0.70 refuse the most (0.7, 0.9 and 0.8); ties go to the one nearest 0.5
    assert chosen["feasible"] and chosen["threshold"] == 0.65
    assert chosen["written"]["refusal_rate"] == pytest.approx(2 / 3)
    assert chosen["unseen"]["refusal_rate"] == 0.5
    assert chosen["written"]["false_refusal_rate"] == 0.0
    sets["written"] += rows_with([0.99], False)  # no threshold below 0.99 spares this one
    fallback = choose_threshold(threshold_curve(sets, REFUSAL), max_false_refusal=0.05)
    assert not fallback["feasible"] and fallback["threshold"] == 0.65
