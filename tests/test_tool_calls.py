"""Tool calls in data: OpenAI messages (tools, tool_calls, tool results) and ShareGPT's
function_call / observation read into one shape; a model whose template drops tools gets
tunelab's tools template; the loss covers the assistant's calls, never results or schemas; a
generated reply parses back into its calls."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from tests.lm_helpers import STORIES, write_jsonl

from tunelab.config import DataConfig
from tunelab.data.conversations import Example, read_examples
from tunelab.data.lm_encode import IGNORE
from tunelab.data.lm_prepare import SftFormat, encode_examples
from tunelab.data.templates import resolve_template
from tunelab.data.tool_calls import TOOLS_TEMPLATE, ToolCall, parse_reply, renders_tools
from tunelab.errors import DataError, TunelabError
from tunelab.models.loader import load_tokenizer
from tunelab.tasks.generative.evaluate import answer_scores, rouge_l

ROOT = Path(__file__).resolve().parents[1]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
OPENAI_ROW = {
    "tools": [WEATHER],
    "messages": [
        {"role": "user", "content": "Is it warm in Lisbon?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "RESULT 24 C and sunny"},
        {"role": "assistant", "content": "<think>24 C is warm.</think>Yes, 24 C and sunny."},
    ],
}
SHAREGPT_ROW = {  # LLaMA-Factory's glaive layout: tools as JSON text, bare function schemas
    "tools": json.dumps([WEATHER["function"]]),
    "conversations": [
        {"from": "human", "value": "Weather in Oslo?"},
        {
            "from": "function_call",
            "value": '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
        },
        {"from": "observation", "value": "RESULT -3 C"},
        {"from": "gpt", "value": "It is -3 C in Oslo."},
    ],
}


def test_both_layouts_read_into_one_shape(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [OPENAI_ROW, SHAREGPT_ROW])
    openai, sharegpt = read_examples(str(path))
    assert openai.tools == sharegpt.tools == [WEATHER]
    call = openai.messages[1]["tool_calls"][0]["function"]
    assert call == {"name": "get_weather", "arguments": {"city": "Lisbon"}}
    assert openai.messages[2] == {"role": "tool", "content": "RESULT 24 C and sunny"}
    assert openai.messages[3]["reasoning_content"] == "24 C is warm."
    assert openai.messages[3]["content"] == "Yes, 24 C and sunny."
    assert [m["role"] for m in sharegpt.messages] == ["user", "assistant", "tool", "assistant"]
    assert sharegpt.messages[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}


def encoded_pieces(tmp_path, rows: list[dict]) -> tuple[str, str]:
    """The text of the trained tokens and of the untrained ones of the first row."""
    tokenizer = load_tokenizer(STORIES)
    examples = read_examples(str(write_jsonl(tmp_path / "rows.jsonl", rows)))
    template = resolve_template("auto", tokenizer, tools=True)
    assert template == "chat" and tokenizer.chat_template == TOOLS_TEMPLATE
    data = DataConfig(path="unused", max_length=4096)
    row = encode_examples(examples, tokenizer, SftFormat(), template, data).examples[0]
    trained = [
        t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE
    ]
    untrained = [
        t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label == IGNORE
    ]
    return tokenizer.decode(trained), tokenizer.decode(untrained)


def test_the_loss_covers_the_calls_and_answers_never_results_or_schemas(tmp_path):
    trained, untrained = encoded_pieces(tmp_path, [OPENAI_ROW])
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lisbon"}}' in trained
    assert "<think>\n24 C is warm.\n</think>\nYes, 24 C and sunny." in trained
    assert "RESULT" not in trained and "The weather in a city" not in trained
    assert "<tool_response>\nRESULT 24 C and sunny\n</tool_response>" in untrained
    assert '"description": "The weather in a city"' in untrained


def test_a_template_that_drops_tools_is_replaced_and_a_plain_one_refused():
    tokenizer = load_tokenizer(STORIES)
    assert not renders_tools(tokenizer)  # no chat template at all
    tokenizer.chat_template = TOOLS_TEMPLATE
    assert renders_tools(tokenizer)
    with pytest.raises(TunelabError, match="rows with tools or tool calls need a chat template"):
        resolve_template("alpaca", tokenizer, tools=True)


@pytest.mark.parametrize(
    "message,field",
    [
        ({"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}, "tool_calls[0]"),
        (
            {"role": "assistant", "tool_calls": [{"name": "f", "arguments": "{not json"}]},
            "tool_calls[0]",
        ),
        ({"role": "assistant", "tool_calls": {"name": "f"}}, "messages[1].tool_calls"),
        ({"role": "robot", "content": "x"}, "messages[1]"),
    ],
)
def test_a_bad_call_is_one_line_naming_file_row_and_field(tmp_path, message, field):
    row = {"messages": [{"role": "user", "content": "hi"}, message]}
    path = write_jsonl(tmp_path / "bad.jsonl", [OPENAI_ROW, row])
    with pytest.raises(DataError) as error:
        read_examples(str(path))
    text = str(error.value)
    assert "bad.jsonl" in text and "row 2" in text and field in text and "\n" not in text


def test_a_reply_parses_back_into_its_calls():
    tokenizer = load_tokenizer(STORIES)
    tokenizer.chat_template = TOOLS_TEMPLATE
    calls = [ToolCall("get_weather", {"city": "Rome"}), ToolCall("get_time", {"zone": "CET"})]
    messages = [
        {"role": "user", "content": "?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [c.as_message_part() for c in calls],
        },
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    reply = text.split("<|im_start|>assistant\n")[1].removesuffix(tokenizer.eos_token + "\n")
    assert parse_reply(reply) == ("Checking.", calls)
    broken = 'Sure <tool_call>{"name": "f", "arguments": [1]}</tool_call>'
    assert parse_reply(broken) == (broken, [])  # not a call: left as the model wrote it


def test_the_shipped_pool_converts_into_rows_tunelab_reads(tmp_path):
    """scripts/make_tools_data.py: the same rows every time (seeded), every one readable, each
    source's kept and left-out rows counted."""
    script = ROOT / "scripts" / "make_tools_data.py"
    pool = ROOT.parent / "shared" / "data" / "tools" / "train"
    runs = [
        subprocess.run(
            [sys.executable, str(script), str(pool), str(tmp_path / name)],
            capture_output=True,
            text=True,
            check=True,
        )
        for name in ("a", "b")
    ]
    assert "seal_tools: 1969 rows kept, 85 left out" in runs[0].stdout
    assert "glaive: 191 rows kept, 109 left out" in runs[0].stdout
    out = tmp_path / "a"
    assert f"{out / 'no_fit'}.jsonl: 1875 rows" in runs[0].stdout
    assert f"{out / 'near_miss'}.jsonl: 472 rows" in runs[0].stdout
    assert (out / "train.jsonl").read_bytes() == (tmp_path / "b" / "train.jsonl").read_bytes()
    train, val, no_fit = (
        read_examples(str(out / f"{n}.jsonl")) for n in ("train", "val", "no_fit")
    )
    assert (len(train), len(val), len(no_fit)) == (2955, 197, 1875)
    assert all(e.tools and e.uses_tools for e in train)
    calls = [m for e in train for m in e.messages if m.get("tool_calls")]
    assert len(calls) > 2500 and all(c["tool_calls"][0]["function"]["name"] for c in calls)
    # a no-fit row: a Seal-Tools instruction offered none of the functions its own row calls,
    # answered without a call, the decline naming what is on offer; made from training
    # instructions for the training file and from validation ones for the validation file
    called = {e.question: {c.name for c in e.calls} for e in train + val if e.calls}
    val_declines = [e for e in val if e.source == "seal_tools_no_fit"]
    assert len(val_declines) == 19 and {e.source for e in no_fit} == {"seal_tools_no_fit"}
    for example in no_fit + val_declines:
        offered = {tool["function"]["name"] for tool in example.tools}
        assert not example.calls and not offered & called[example.question]
        assert example.answer.endswith(", ".join(sorted(offered)) + ".")
    # a near miss: a one-call instruction offered only its own row's other functions; the
    # validation file holds them too, made from its own instructions
    near = read_examples(str(out / "near_miss.jsonl"))
    val_near = [e for e in val if e.source == "seal_tools_near_miss"]
    assert len(val_near) == 22 and {e.source for e in near} == {"seal_tools_near_miss"}
    for example in near + val_near:
        offered = {tool["function"]["name"] for tool in example.tools}
        assert offered and not example.calls and not offered & called[example.question]
    assert {e.question for e in near} <= {e.question for e in train}
    # and no conversation opens in both splits (API-Bank writes one row per dialogue step)
    opening = {e.messages[0]["content"] for e in train}
    assert {e.question for e in no_fit} <= opening
    assert not {e.messages[0]["content"] for e in val} & opening


def test_sft_holds_replies_to_the_reference_calls():
    """call_accuracy: a reply is right when it makes the reference's calls exactly, in any order
    (or no call where the reference answers in words); no_call_rate: the share of the rows due no
    call answered without one; ROUGE-L reads the calls as text."""
    weather = {
        "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
    }
    calls = {"role": "assistant", "content": "", "tool_calls": [weather]}
    words = {"role": "assistant", "content": "I can't book flights."}
    question = {"role": "user", "content": "Weather in Oslo?"}
    examples = [
        Example([question, reply], row, "rows.jsonl", tools=[WEATHER])
        for row, reply in enumerate([calls, calls, words, words])
    ]
    right = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    assert examples[0].answer == right  # the call turn's reference is its call, not ""
    replies = [right, right.replace("Oslo", "Bergen"), "Sorry, I can't.", right]
    scores = answer_scores(examples, replies, refusal=None)
    assert scores["call_accuracy"] == 0.5  # the right call and the decline; not the wrong city
    # of the two rows due no call, one was answered in words: BFCL's irrelevance on own rows
    assert (scores["no_call_rate"], scores["n_no_call_due"]) == (0.5, 2)
    assert rouge_l(examples[0].answer, replies[0]) == 1.0
    assert "call_accuracy" not in answer_scores(
        [replace(e, tools=[]) for e in examples[2:]], replies[2:], refusal=None
    )


def test_streamed_rows_with_tools_are_refused_not_stripped(tmp_path):
    """The Arrow record file keeps messages, not a row's tools: a streamed run would train
    without them, so it stops naming the row."""
    from tunelab.data.streaming.sft import write_records

    path = write_jsonl(tmp_path / "rows.jsonl", [OPENAI_ROW])
    with pytest.raises(DataError) as error:
        write_records(path, tmp_path / "records.arrow")
    assert "row 1" in str(error.value) and "not streamed yet" in str(error.value)
