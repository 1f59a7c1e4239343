"""An answer's reasoning (`reasoning_content`, or <think> opening it): learned, kept as context
out of the loss, or removed, by `task.reasoning`; a generated reply's reasoning is split from the
answer where it is scored and served."""

import asyncio

import pytest
from tests.lm_helpers import STORIES

from tunelab.config import DataConfig
from tunelab.data.conversations import read_examples
from tunelab.data.lm_encode import IGNORE
from tunelab.data.lm_prepare import SftFormat, encode_examples
from tunelab.data.tool_calls import TOOLS_TEMPLATE
from tunelab.errors import TunelabError
from tunelab.models.loader import load_tokenizer
from tunelab.serve.responses import chat_reply, with_reasoning
from tunelab.serve.schemas import ChatRequest
from tunelab.tasks.generative.evaluate import scored_answers

THOUGHT = "The capital of France is Paris"
ROW = {
    "messages": [
        {"role": "user", "content": "Where is the Louvre?"},
        {"role": "assistant", "content": f"<think>{THOUGHT}.</think>In Paris."},
    ]
}


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    import json

    path = tmp_path_factory.mktemp("reasoning") / "rows.jsonl"
    path.write_text(json.dumps(ROW) + "\n")
    return read_examples(path)


@pytest.fixture(scope="module")
def chatml():
    tokenizer = load_tokenizer(STORIES)
    tokenizer.chat_template = TOOLS_TEMPLATE  # writes reasoning_content as <think>...</think>
    return tokenizer


def encoded(examples, tokenizer, template: str, policy: str) -> dict:
    form = SftFormat(template=template, reasoning=policy)
    data = DataConfig(path="rows.jsonl", max_length=256)
    return encode_examples(examples, tokenizer, form, template, data).examples[0]


def trained_text(row: dict, tokenizer) -> str:
    return tokenizer.decode(
        [t for t, y in zip(row["input_ids"], row["labels"], strict=True) if y != IGNORE]
    )


@pytest.mark.parametrize("template", ["chat", "qa"])
def test_mask_keeps_the_reasoning_in_the_text_and_out_of_the_loss(examples, chatml, template):
    learned = encoded(examples, chatml, template, "train")
    masked = encoded(examples, chatml, template, "mask")
    dropped = encoded(examples, chatml, template, "drop")
    assert THOUGHT in chatml.decode(learned["input_ids"])  # a plain template writes it too
    assert THOUGHT in trained_text(learned, chatml)
    assert masked["input_ids"] == learned["input_ids"]  # the same text ...
    assert THOUGHT not in trained_text(masked, chatml)  # ... but the reasoning is not learned
    assert "In Paris." in trained_text(masked, chatml)
    assert "think" not in trained_text(masked, chatml)  # nor its closing tag
    assert THOUGHT not in chatml.decode(dropped["input_ids"])
    assert trained_text(dropped, chatml).strip().startswith("In Paris.")


def test_mask_with_a_template_that_does_not_write_reasoning_is_one_line(
    examples, stories_chat_tokenizer
):
    with pytest.raises(TunelabError, match="does not write the reasoning_content"):
        encoded(examples, stories_chat_tokenizer, "chat", "mask")


def test_a_generated_answer_is_scored_without_its_reasoning(examples):
    scores, rows = scored_answers(examples, [f"<think>{THOUGHT}.</think>In Paris."], None)
    assert scores["rouge_l"] == 1.0
    assert rows[0]["answer"] == "In Paris." and rows[0]["reasoning"] == f"{THOUGHT}."


def test_the_server_returns_the_reasoning_beside_the_answer():
    body = ChatRequest(model="m", messages=[{"role": "user", "content": "Where?"}])
    message, calls = chat_reply(f"<think>{THOUGHT}.</think>\nIn Paris.", body)
    assert message == {
        "role": "assistant",
        "content": "In Paris.",
        "reasoning_content": f"{THOUGHT}.",
    }
    assert calls == []
    plain, _ = chat_reply(" In Paris. ", body)
    assert plain == {"role": "assistant", "content": "In Paris."}
    earlier = ChatRequest(
        model="m",
        messages=[
            {"role": "user", "content": "Where?"},
            {"role": "assistant", "content": "In Paris.", "reasoning_content": THOUGHT},
            {"role": "user", "content": "Sure?"},
        ],
    )
    assert earlier.messages[1].as_turn()["reasoning_content"] == THOUGHT


def streamed(reply: str, cuts: tuple[int, ...]) -> dict[str, str]:
    """The reply sent as the engine's text pieces (split at `cuts`) through the server's chat
    stream stages; what each kind of delta adds up to."""
    bounds = [0, *cuts, len(reply)]
    pieces = [reply[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]

    async def engine():
        for piece in pieces:
            yield "text", piece
        yield "done", "stop"

    async def collect() -> dict[str, str]:
        sent = {"text": "", "reasoning": ""}
        async for kind, value in with_reasoning(engine()):
            if kind in sent:
                assert value, "an empty delta"
                sent[kind] += value
        return sent

    return asyncio.run(collect())


@pytest.mark.parametrize(
    "reply",
    [
        f"<think>\n{THOUGHT}.\n</think>\nIn Paris.",
        f"<think>{THOUGHT}.</think>In  Paris.",
        "In Paris, <think> is only a word here.",
        f"<think>\n{THOUGHT}, and the reply was cut",
    ],
)
def test_a_streamed_reply_sends_the_reasoning_apart_and_adds_up_to_the_whole_reply(reply):
    body = ChatRequest(model="m", messages=[{"role": "user", "content": "Where?"}])
    message, _ = chat_reply(reply, body)
    several = tuple(sorted({3, 9, 40, len(reply) - 2}))
    for cuts in [(), *((i,) for i in range(1, len(reply))), several]:
        sent = streamed(reply, cuts)
        assert sent["reasoning"] == message.get("reasoning_content", ""), cuts
        assert sent["text"] == message["content"], cuts
