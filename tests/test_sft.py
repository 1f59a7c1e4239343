"""sft and pretrain on the real stories260K Llama: label masking per format and template, a tiny
model that learns Q&A pairs, EOS stops generation, mixing weights, packing, perplexity."""

import json
from pathlib import Path

import pytest
from tests.conftest import ASSETS
from tests.helpers import assert_one_line_error, run_cli

from tunelab.config import DataConfig, MixSource, TaskConfig, load_config
from tunelab.data.conversations import read_examples
from tunelab.data.lm_encode import IGNORE, blocks_of, encode_segments
from tunelab.data.lm_prepare import mix_in, prepare_pretrain
from tunelab.data.templates import render
from tunelab.inference_lm import load_assistant
from tunelab.models.loader import load_tokenizer
from tunelab.pipeline import run

STORIES = str(ASSETS / "stories260K")
# A minimal chat template (the stories tokenizer has none): roles as text, </s> ends a turn.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}</s>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
QA = [
    ("What color is the sky?", "The sky is blue."),
    ("What do cats say?", "Cats say meow."),
    ("Where do fish live?", "Fish live in water."),
    ("What is the sun?", "The sun is a star."),
    ("Who likes honey?", "Bears like honey."),
    ("What do cows give?", "Cows give milk."),
]
RECORDS = {
    "alpaca": {"instruction": "What color is the sky?", "input": "", "output": "The sky is blue."},
    "prompt_completion": {"prompt": "What color is the sky?", "completion": "The sky is blue."},
    "messages": {
        "messages": [
            {"role": "user", "content": "What color is the sky?"},
            {"role": "assistant", "content": "The sky is blue."},
        ]
    },
    "sharegpt": {
        "conversations": [
            {"from": "human", "value": "What color is the sky?"},
            {"from": "gpt", "value": "The sky is blue."},
        ]
    },
}


@pytest.fixture(scope="module")
def tokenizer():
    tok = load_tokenizer(STORIES)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def trained_runs(example: dict) -> list[list[int]]:
    runs, current = [], []
    for token, label in zip(example["input_ids"], example["labels"], strict=True):
        if label != IGNORE:
            current.append(token)
        elif current:
            runs, current = [*runs, current], []
    return runs + ([current] if current else [])


@pytest.mark.parametrize("fmt", list(RECORDS))
@pytest.mark.parametrize("template", ["chat", "alpaca", "qa", "plain", "Q: {prompt}\nA:"])
def test_only_the_response_tokens_are_trained(tmp_path, tokenizer, fmt, template):
    [example] = read_examples(str(write_jsonl(tmp_path / "d.jsonl", [RECORDS[fmt]])))
    segments = render(example.messages, template, tokenizer, None)
    encoded = encode_segments(segments, tokenizer, template == "chat", train_on_prompt=False)
    [trained] = trained_runs(encoded)
    assert trained[-1] == tokenizer.eos_token_id  # EOS is learned, so generation stops
    assert tokenizer.decode(trained, skip_special_tokens=True).strip() == "The sky is blue."
    prompt = encoded["input_ids"][: len(encoded["input_ids"]) - len(trained)]
    assert encoded["input_ids"][-len(trained) :] == trained  # the response is the tail
    assert "What color is the sky?" in tokenizer.decode(prompt)
    assert "blue" not in tokenizer.decode(prompt)


def test_every_assistant_turn_of_a_conversation_is_trained(tmp_path, tokenizer):
    turns = [
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello there."},
        {"role": "user", "content": "Name a color."},
        {"role": "assistant", "content": "Red."},
    ]
    [example] = read_examples(str(write_jsonl(tmp_path / "d.jsonl", [{"messages": turns}])))
    for template in ("chat", "qa"):
        segments = render(example.messages, template, tokenizer, "Be brief.")
        encoded = encode_segments(segments, tokenizer, template == "chat", train_on_prompt=False)
        decoded = [
            tokenizer.decode(r, skip_special_tokens=True).strip() for r in trained_runs(encoded)
        ]
        assert decoded == ["Hello there.", "Red."], template


def test_mixing_follows_the_weights(tmp_path):
    main = write_jsonl(
        tmp_path / "main.jsonl", [{"prompt": f"q{i}", "completion": "a"} for i in range(40)]
    )
    small = write_jsonl(
        tmp_path / "small.jsonl", [{"prompt": f"s{i}", "completion": "b"} for i in range(5)]
    )
    big = write_jsonl(
        tmp_path / "big.jsonl", [{"prompt": f"b{i}", "completion": "c"} for i in range(100)]
    )
    config = DataConfig(
        path=str(main),
        mix=[MixSource(path=str(small), weight=0.5), MixSource(path=str(big), weight=1.5)],
    )
    train = read_examples(str(main))
    mixed, counts = mix_in(train, config, seed=0)
    assert counts == {str(main): 40, str(small): 20, str(big): 60}
    sources = [e.file for e in mixed]
    assert sources.count(str(small)) == 20 and sources.count(str(big)) == 60
    # the 5 small rows are repeated evenly (4 times each), not one row 20 times
    small_rows = [e.row for e in mixed if e.file == str(small)]
    assert sorted(small_rows) == sorted(list(range(1, 6)) * 4)


def test_pretrain_blocks_cover_every_token_once(tmp_path, tokenizer):
    for length in (1000, 1025, 1024):  # a short tail, a lone last token, an exact fit
        stream = list(range(length))
        blocks = blocks_of(stream, 64)
        assert [t for b in blocks for t in b["input_ids"]] == stream
        assert all(2 <= len(b["input_ids"]) <= 65 for b in blocks)
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(10):
        (folder / f"doc{i}.txt").write_text(f"Once upon a time there was a cat number {i}. " * 5)
    data = prepare_pretrain(DataConfig(path=str(folder), max_length=32), tokenizer, seed=0)
    for name, split in data.summary["splits"].items():
        assert sum(len(b["input_ids"]) for b in data.encoded[name]) == split["tokens"]
    assert sum(s["documents"] for s in data.summary["splits"].values()) == 10


def sft_overrides(tmp_path: Path, method: str, *extra: str) -> list[str]:
    records = [{"question": q, "answer": a, "facts": [a.split()[-1].strip(".")]} for q, a in QA]
    train = write_jsonl(tmp_path / "train.jsonl", records * 4)
    test = write_jsonl(tmp_path / "test.jsonl", records)
    return [
        f"model.name={STORIES}",
        "task.name=sft",
        "task.template=qa",
        f"data.path={train}",
        f"data.test_path={test}",
        "data.split=[0.9,0.1,0.0]",
        f"method.name={method}",
        "train.batch_size=8",
        "train.weight_decay=0.0",
        "eval.max_new_tokens=12",
        f"output.dir={tmp_path / 'run'}",
        *extra,
    ]


@pytest.fixture(scope="module")
def learned_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sft")
    summary = run(
        load_config(None, sft_overrides(tmp_path, "full", "train.epochs=25", "train.lr=0.003"))
    )
    return tmp_path / "run", summary


def test_a_tiny_model_learns_qa_pairs_and_stops_at_eos(learned_run):
    run_dir, summary = learned_run
    after = json.loads((run_dir / "eval_after.json").read_text())
    # greedy answers are the references exactly: nothing generated after EOS
    assert [r["answer"] for r in after["answers"]] == [a for _, a in QA]
    assert summary["key_fact_hit_rate_before"] == 0.0 and summary["key_fact_hit_rate"] == 1.0
    assert summary["perplexity"] < summary["perplexity_before"] / 10
    for name in ("report.md", "report.html", "plots/curves.png", "plots/scores.png", "model"):
        assert (run_dir / name).exists(), name


def test_generate_reloads_the_run_and_answers(learned_run):
    run_dir, _ = learned_run
    code, output = run_cli(
        "generate", run_dir, "--prompt", "What do cats say?", "--max-new-tokens", "12"
    )
    assert code == 0, output
    assert json.loads(output.strip().splitlines()[-1])["answer"] == "Cats say meow."
    assistant = load_assistant(run_dir)
    assert assistant.answer(["Who likes honey?"], max_new_tokens=12) == ["Bears like honey."]


def test_data_preview_marks_the_trained_tokens(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("")
    code, output = run_cli(
        "data", "preview", config, *sft_overrides(tmp_path, "lora"), "--rows", "1"
    )
    assert code == 0, output
    marked = output.split("[[", 1)[1].split("]]", 1)[0]
    assert marked.strip().rstrip("</s>").strip() in {a for _, a in QA}
    assert "Question:" in output.split("[[", 1)[0]


@pytest.mark.parametrize(
    "method,lr",
    [
        ("lora", 0.01),
        ("qlora", 0.01),
        ("ia3", 0.05),
        ("prompt_tuning", 0.05),
        ("prefix_tuning", 0.1),
        ("freeze", 0.005),
        ("adapter", 0.005),
    ],  # fmt: skip
)
def test_methods_lower_held_out_perplexity_and_reload(tmp_path, method, lr):
    overrides = sft_overrides(tmp_path, method, "train.epochs=3", f"train.lr={lr}")
    summary = run(load_config(None, overrides))
    assert summary["perplexity"] < summary["perplexity_before"], method
    assistant = load_assistant(tmp_path / "run")
    after = json.loads((tmp_path / "run" / "eval_after.json").read_text())
    question = after["answers"][0]["question"]
    assert assistant.answer([question], max_new_tokens=12) == [after["answers"][0]["answer"]]


def test_few_shot_is_the_no_training_baseline(tmp_path):
    summary = run(load_config(None, sft_overrides(tmp_path, "few_shot", "method.shots=2")))
    assert summary["parameters"]["trainable"] == 0 or summary["epochs_run"] == 0
    assert summary["key_fact_hit_rate"] == summary["key_fact_hit_rate_before"]
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert len(info["shots"]) == 4  # two conversations of a question and an answer


def test_pretrain_lowers_held_out_perplexity(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(12):
        (folder / f"story{i}.txt").write_text(
            f"The red robot number {i} likes to dance with the blue cat. " * 6
        )
    overrides = [
        f"model.name={STORIES}",
        "task.name=pretrain",
        f"data.path={folder}",
        "data.max_length=64",
        "method.name=lora",
        "train.epochs=2",
        "train.lr=0.01",
        f"output.dir={tmp_path / 'run'}",
    ]
    summary = run(load_config(None, overrides))
    assert summary["score_name"] == "perplexity"
    assert summary["perplexity"] < 0.7 * summary["perplexity_before"]


@pytest.mark.parametrize(
    "record,expected",
    [
        ({"instruction": "Hi", "input": ""}, ["d.jsonl", "row 1", "output", "missing"]),
        ({"prompt": "Hi", "completion": "  "}, ["d.jsonl", "row 1", "completion", "empty"]),
        ({"text": "Hi"}, ["d.jsonl", "row 1", "unknown record format"]),
        ({"messages": [{"role": "user", "content": "Hi"}]}, ["row 1", "messages", "last message"]),
    ],
)
def test_bad_sft_rows_are_one_line_errors(tmp_path, record, expected):
    data = write_jsonl(tmp_path / "d.jsonl", [record])
    code, output = run_cli("train", f"model.name={STORIES}", "task.name=sft", f"data.path={data}",
                           f"output.dir={tmp_path / 'run'}")  # fmt: skip
    assert_one_line_error(code, output, *expected)


def test_chat_template_needs_a_tokenizer_that_has_one(tmp_path):
    code, output = run_cli("train", *sft_overrides(tmp_path, "lora", "task.template=chat"))
    assert_one_line_error(code, output, "task.template", "no chat template")


def test_classify_only_method_is_refused_for_sft(tmp_path):
    code, output = run_cli("train", *sft_overrides(tmp_path, "head"))
    assert_one_line_error(code, output, "method 'head'", "task 'sft'")


def test_task_config_rejects_unknown_task():
    with pytest.raises(ValueError):
        TaskConfig(name="translate")


def test_a_merged_lora_sft_export_generates_like_the_run(tmp_path):
    from transformers import AutoModelForCausalLM

    from tunelab.generation import generate

    run(load_config(None, sft_overrides(tmp_path, "lora", "train.epochs=3", "train.lr=0.01")))
    code, output = run_cli("export", tmp_path / "run", "--out", tmp_path / "merged", "--merge")
    assert code == 0, output
    assistant = load_assistant(tmp_path / "run")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    prompt = assistant.prompt([{"role": "user", "content": "What do cats say?"}])
    assert generate(merged, assistant.tokenizer, [prompt], 12) == assistant.reply(
        [prompt], max_new_tokens=12
    )


def test_chat_streams_answers_with_the_run_template(learned_run):
    from typer.testing import CliRunner

    from tunelab.cli import app

    run_dir, _ = learned_run
    result = CliRunner().invoke(
        app, ["chat", str(run_dir), "--temperature", "0", "--max-new-tokens", "12", "--no-history"],
        input="What do cats say?\nWho likes honey?\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Cats say meow." in result.output and "Bears like honey." in result.output


def test_compare_shows_what_mixing_costs_on_the_general_set(tmp_path):
    general = write_jsonl(
        tmp_path / "general.jsonl",
        [{"instruction": f"Count to {n}.", "input": "", "output": " ".join(str(i) for i in range(1, n + 1))}
         for n in range(2, 8)],
    )  # fmt: skip
    base = tmp_path / "base.yaml"
    base.write_text("")  # the experiment's overrides carry the whole config
    overrides = sft_overrides(
        tmp_path, "lora", "train.epochs=2", "train.lr=0.01", f"eval.general={general}"
    )
    experiment = tmp_path / "mixing.yaml"
    experiment.write_text(
        json.dumps(
            {
                "base": str(base),
                "output_dir": str(tmp_path / "cmp"),
                "overrides": [o for o in overrides if not o.startswith("output.dir")],
                "variants": [
                    {"name": "domain_only", "overrides": []},
                    {
                        "name": "mixed",
                        "overrides": [f"data.mix=[{{path: {general}, weight: 1.0}}]"],
                    },
                ],
            }
        )
    )
    code, output = run_cli("compare", experiment)
    assert code == 0, output
    rows = json.loads((tmp_path / "cmp" / "leaderboard.json").read_text())
    assert {r["method"] for r in rows} == {"domain_only", "mixed"}
    assert all(
        r["general_rouge_l"] is not None and r["score_name"] == "key_fact_hit_rate" for r in rows
    )
    summary = json.loads((tmp_path / "cmp" / "mixed" / "data_summary.json").read_text())
    assert summary["mix"][str(general)] == 22  # weight 1.0: as many rows as the 22 training rows
    assert "general ROUGE-L after" in (tmp_path / "cmp" / "leaderboard.md").read_text()


def test_packing_keeps_every_trained_token_in_fewer_rows(tmp_path, tokenizer):
    from tunelab.data.lm_prepare import prepare_sft

    overrides = sft_overrides(tmp_path, "lora", "data.max_length=200")
    config = load_config(None, overrides)
    plain = prepare_sft(config.data, config.task, tokenizer, seed=0)
    config.task.packing = True
    packed = prepare_sft(config.data, config.task, tokenizer, seed=0)

    def trained(rows):
        return [
            t
            for r in rows
            for t, label in zip(r["input_ids"], r["labels"], strict=True)
            if label != IGNORE
        ]

    assert len(packed.encoded["train"]) < len(plain.encoded["train"]) / 2
    assert all(len(r["input_ids"]) <= 200 for r in packed.encoded["train"])
    assert trained(packed.encoded["train"]) == trained(plain.encoded["train"])
