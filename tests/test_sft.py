"""sft on the real stories260K Llama: label masking per format and template, mixing weights,
packing, every method, errors."""

import json

import pytest
import torch
from tests.helpers import assert_one_line_error, run_cli
from tests.lm_helpers import STORIES, sft_overrides, write_jsonl

from tunelab.assistant import load_assistant
from tunelab.config import DataConfig, MixSource
from tunelab.data.conversations import read_examples
from tunelab.data.lm_encode import IGNORE, encode_segments
from tunelab.data.lm_prepare import SftFormat, mix_in
from tunelab.data.templates import adds_special_tokens, render
from tunelab.pipeline import load_config, run

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
def test_only_the_response_tokens_are_trained(tmp_path, stories_chat_tokenizer, fmt, template):
    [example] = read_examples(str(write_jsonl(tmp_path / "d.jsonl", [RECORDS[fmt]])))
    segments = render(example.messages, template, stories_chat_tokenizer, None)
    encoded = encode_segments(
        segments, stories_chat_tokenizer, adds_special_tokens(template), train_on_prompt=False
    )
    [trained] = trained_runs(encoded)
    assert trained[-1] == stories_chat_tokenizer.eos_token_id  # EOS is learned, so generation stops
    assert (
        stories_chat_tokenizer.decode(trained, skip_special_tokens=True).strip()
        == "The sky is blue."
    )
    prompt = encoded["input_ids"][: len(encoded["input_ids"]) - len(trained)]
    assert encoded["input_ids"][-len(trained) :] == trained  # the response is the tail
    assert "What color is the sky?" in stories_chat_tokenizer.decode(prompt)
    assert "blue" not in stories_chat_tokenizer.decode(prompt)


def test_every_assistant_turn_of_a_conversation_is_trained(tmp_path, stories_chat_tokenizer):
    turns = [
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello there."},
        {"role": "user", "content": "Name a color."},
        {"role": "assistant", "content": "Red."},
    ]
    [example] = read_examples(str(write_jsonl(tmp_path / "d.jsonl", [{"messages": turns}])))
    for template in ("chat", "qa"):
        segments = render(example.messages, template, stories_chat_tokenizer, "Be brief.")
        encoded = encode_segments(
            segments, stories_chat_tokenizer, adds_special_tokens(template), train_on_prompt=False
        )
        decoded = [
            stories_chat_tokenizer.decode(r, skip_special_tokens=True).strip()
            for r in trained_runs(encoded)
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


@pytest.mark.parametrize(
    "record,expected",
    [
        ({"instruction": "Hi", "input": ""}, ["d.jsonl", "row 1", "output", "missing"]),
        ({"prompt": "Hi", "completion": "  "}, ["d.jsonl", "row 1", "completion", "empty"]),
        ({"text": "Hi"}, ["d.jsonl", "row 1", "unknown record format"]),
        ({"messages": [{"role": "user", "content": "Hi"}]}, ["row 1", "messages", "last message"]),
        # issue 36: an answer to no question trained silently
        (
            {
                "messages": [
                    {"role": "system", "content": "Be kind."},
                    {"role": "assistant", "content": "Hello."},
                ]
            },
            ["row 1", "messages", "opens with the assistant's turn"],
        ),
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


def test_config_rejects_unknown_task_naming_the_known_ones(tmp_path):
    code, output = run_cli("train", "task.name=translate", f"output.dir={tmp_path / 'run'}")
    assert_one_line_error(code, output, "task.name", "unknown task 'translate'", "sft")


def test_packing_keeps_every_trained_token_in_fewer_rows(tmp_path, stories_chat_tokenizer):
    from tunelab.data.lm_prepare import prepare_sft

    overrides = sft_overrides(tmp_path, "lora", "data.max_length=200")
    config = load_config(None, overrides)
    plain = prepare_sft(config.data, SftFormat(), stories_chat_tokenizer, seed=0)
    packed = prepare_sft(config.data, SftFormat(packing=True), stories_chat_tokenizer, seed=0)

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


def test_the_data_summary_says_how_much_of_the_batches_is_padding(tmp_path):
    import random

    from tunelab.data.encode import make_loader, padding_share
    from tunelab.pipeline import open_task

    rows = [{"input_ids": [1] * n} for n in (4, 4, 2, 2)]  # two batches of equal rows
    assert padding_share(rows, 2, group_by_length=True, seed=0) == 0.0
    assert padding_share(rows[:3], 3, group_by_length=False, seed=0) == pytest.approx(2 / 12)
    rng = random.Random(0)
    mixed = [{"input_ids": [1] * rng.randint(10, 200)} for _ in range(400)]
    grouped, shuffled = (padding_share(mixed, 8, group, seed=0) for group in (True, False))
    assert grouped < shuffled / 3  # length grouping is what removes most padding
    config = load_config(None, sft_overrides(tmp_path, "lora"))
    task = open_task(config)
    share = task.prepare()["splits"]["train"]["padding_share"]
    loader = make_loader(  # epoch 1's batches as the training loop forms them
        task.data.encoded["train"], task.tokenizer, config.train.batch_size, shuffle=True,
        group_by_length=True, seed=config.train.seed + 1, collate=task.collate,
    )  # fmt: skip
    masks = [batch["attention_mask"] for batch in loader]
    real, padded = sum(int(m.sum()) for m in masks), sum(m.numel() for m in masks)
    assert share == pytest.approx(1 - real / padded) and share > 0


def test_perplexity_batches_rows_of_one_length_and_does_not_depend_on_their_order(
    tmp_path, stories_chat_tokenizer
):
    from transformers import AutoModelForCausalLM

    from tunelab.data.encode import make_loader
    from tunelab.data.lm_encode import lm_collator
    from tunelab.data.lm_prepare import prepare_sft
    from tunelab.tasks.generative.evaluate import perplexity

    config = load_config(None, sft_overrides(tmp_path, "lora", "data.max_length=200"))
    rows = prepare_sft(config.data, SftFormat(), stories_chat_tokenizer, 0).encoded["train"]
    model = AutoModelForCausalLM.from_pretrained(STORIES).eval()
    figures = [perplexity(model, order, stories_chat_tokenizer, 4) for order in (rows, rows[::-1])]
    assert figures[1]["tokens"] == figures[0]["tokens"]
    assert figures[1]["perplexity"] == pytest.approx(figures[0]["perplexity"], rel=1e-5)
    loader = make_loader(
        rows, stories_chat_tokenizer, 4, shuffle=False, group_by_length=True,
        collate=lm_collator(stories_chat_tokenizer),
    )  # fmt: skip
    batches = [batch["input_ids"] for batch in loader]
    assert sum(len(batch) for batch in batches) == len(rows)  # every row, once
    widths = [batch.shape[1] for batch in batches]
    assert widths == sorted(widths, reverse=True)  # longest first, each padded to its own


def test_packed_rows_train_as_if_each_example_were_alone(tmp_path, stories_chat_tokenizer):
    """The loss of packed rows equals the loss of the same examples one per row; packed the
    old way (one causal mask over the whole row) the examples see each other and it differs."""
    from transformers import AutoModelForCausalLM

    from tunelab.data.lm_encode import lm_collator, pack
    from tunelab.data.lm_prepare import prepare_sft
    from tunelab.tasks.generative.loss import labelled_token_loss

    config = load_config(None, sft_overrides(tmp_path, "lora", "data.max_length=200"))
    alone = prepare_sft(config.data, SftFormat(), stories_chat_tokenizer, 0).encoded["train"][:8]
    packed = pack(alone, 200)
    leaky = [{k: v for k, v in row.items() if k != "position_ids"} for row in packed]
    model = AutoModelForCausalLM.from_pretrained(STORIES).eval()
    collate = lm_collator(stories_chat_tokenizer)
    with torch.no_grad():
        losses = [
            labelled_token_loss(model, collate(rows)).item() for rows in (alone, packed, leaky)
        ]
    assert len(packed) < len(alone) / 2
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    assert abs(losses[2] - losses[0]) > 1e-3, losses


def test_packing_with_virtual_tokens_is_a_one_line_error(tmp_path):
    code, output = run_cli("train", *sft_overrides(tmp_path, "prefix_tuning", "task.packing=true"))
    assert_one_line_error(code, output, "task.packing", "prefix_tuning", "task.packing=false")
