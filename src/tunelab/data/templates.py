"""Prompt templates: a conversation becomes text segments, each marked trained or not.

`chat` uses the tokenizer's own chat template; the others are plain text around {prompt}
(seed 001's "Please answer the following question" is `qa`)."""

import re
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from tunelab.data.tool_calls import THINK_CLOSE, THINK_OPEN, TOOLS_TEMPLATE, renders_tools
from tunelab.errors import TunelabError

PLAIN_TEMPLATES = {
    "alpaca": "Below is an instruction that describes a task. Write a response that "
    "appropriately completes the request.\n\n### Instruction:\n{prompt}\n\n### Response:\n",
    "qa": "Please answer the following question.\n\nQuestion: {prompt}\n\nAnswer: ",
    "plain": "{prompt}\n",
}
TEMPLATE_NAMES = ["auto", "chat", *PLAIN_TEMPLATES]
# what happens to an assistant's reasoning (`reasoning_content`, or <think> opening its answer):
# learned with the answer, kept in the text but out of the loss, or removed from the data
REASONING_POLICIES = ("train", "mask", "drop")


@dataclass(frozen=True)
class Segment:
    text: str
    trained: bool  # the response: the tokens the loss is computed on


def adds_special_tokens(template: str | None) -> bool:
    """The one rule for tokenizing a rendered prompt: a chat template writes the model's special
    tokens itself (BOS, turn markers), so its text is tokenized without adding them again; a
    plain template's text gets the tokenizer's (BOS). Training, evaluation, generate, chat, the
    server and the scope guard all ask this."""
    return template != "chat"


def resolve_template(name: str, tokenizer: PreTrainedTokenizerBase, tools: bool = False) -> str:
    """'auto' picks the model's chat template when it has one; a user template needs {prompt}.
    Rows with tools need a chat template that writes them (tools_template)."""
    if tools:
        return tools_template(name, tokenizer)
    if name == "auto":
        return "chat" if tokenizer.chat_template else "alpaca"
    if name == "chat" and not tokenizer.chat_template:
        raise TunelabError(
            "task.template: this tokenizer has no chat template; use alpaca, qa, plain or your own"
        )
    if name not in TEMPLATE_NAMES and "{prompt}" not in name:
        raise TunelabError(
            f"task.template: '{name}' is neither a known template ({', '.join(TEMPLATE_NAMES)}) "
            "nor a text with a {prompt} placeholder"
        )
    return name


def tools_template(name: str, tokenizer: PreTrainedTokenizerBase) -> str:
    """The model's own chat template where it renders tools and calls; otherwise tunelab's
    (data/tool_calls.TOOLS_TEMPLATE), set on the tokenizer, so that the run's saved tokenizer,
    the server and the exports write and read tools the way training did."""
    if name not in ("auto", "chat"):
        raise TunelabError(
            f"task.template: rows with tools or tool calls need a chat template (auto or "
            f"chat), not '{name}'"
        )
    if not renders_tools(tokenizer):
        tokenizer.chat_template = TOOLS_TEMPLATE
    return "chat"


def with_system(messages: list[dict], system: str | None) -> list[dict]:
    if system and messages[0]["role"] != "system":
        return [{"role": "system", "content": system}, *messages]
    return messages


def without_reasoning(messages: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "reasoning_content"} for m in messages]


def reasoning_span(turn: str, reasoning: str) -> int:
    """Where the reasoning of a rendered assistant turn ends (its closing tag and the space after
    it included): the turn's masked part under `reasoning: mask`."""
    start = turn.find(reasoning)
    if start < 0:
        raise TunelabError(
            "task.reasoning=mask: the chat template does not write the reasoning_content; "
            "use reasoning=train or drop, or a template that writes it"
        )
    closing = re.match(r"\s*(" + re.escape(THINK_CLOSE) + r")?\s*", turn[start + len(reasoning) :])
    return start + len(reasoning) + closing.end()


def answer_segments(turn: str, reasoning: str | None, policy: str) -> list[Segment]:
    """An assistant turn as trained segments; under `mask` its reasoning is context only."""
    if policy != "mask" or not reasoning:
        return [Segment(turn, True)]
    end = reasoning_span(turn, reasoning)
    return [Segment(turn[:end], False), Segment(turn[end:], True)]


def chat_segments(
    messages: list[dict], tokenizer, tools: list[dict] | None = None, reasoning: str = "train"
) -> list[Segment]:
    """Each assistant turn is the difference between the conversation rendered up to it (with
    the generation prompt) and rendered through it; the rest is prompt."""
    segments, done = [], ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix = tokenizer.apply_chat_template(
            messages[:i], tools=tools or None, tokenize=False, add_generation_prompt=True
        )
        through = tokenizer.apply_chat_template(
            messages[: i + 1], tools=tools or None, tokenize=False
        )
        if not through.startswith(prefix) or not prefix.startswith(done):
            raise TunelabError("the chat template renders turns inconsistently; use a plain one")
        # rstrip: the turn ends on the end-of-turn token, not the newline the template adds.
        turn = through[len(prefix) :].rstrip()
        segments += [
            Segment(prefix[len(done) :], False),
            *answer_segments(turn, message.get("reasoning_content"), reasoning),
        ]
        done = prefix + turn
    return segments


def plain_answer(message: dict) -> str:
    """A plain template writes the reasoning as tunelab's chat template does: <think> first."""
    reasoning = message.get("reasoning_content")
    thought = f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n" if reasoning else ""
    return thought + message["content"]


def plain_segments(messages: list[dict], template: str, reasoning: str = "train") -> list[Segment]:
    pattern = PLAIN_TEMPLATES.get(template, template)
    segments, pending = [], ""
    for message in messages:
        if message["role"] == "system":
            pending += message["content"] + "\n\n"
        elif message["role"] == "user":
            pending += pattern.replace("{prompt}", message["content"])
        else:
            answer = answer_segments(
                plain_answer(message), message.get("reasoning_content"), reasoning
            )
            segments += [Segment(pending, False), *answer]
            pending = ""
    return segments


def render(
    messages: list[dict],
    template: str,
    tokenizer,
    system: str | None,
    tools: list[dict] | None = None,
    reasoning: str = "train",
) -> list[Segment]:
    """The whole conversation as segments; the last one is the answer to learn. `reasoning` is
    one of REASONING_POLICIES."""
    messages = with_system(messages, system)
    if reasoning == "drop":
        messages = without_reasoning(messages)
    if template == "chat":
        return chat_segments(messages, tokenizer, tools, reasoning)
    return plain_segments(messages, template, reasoning)


def generation_prompt(
    messages: list[dict],
    template: str,
    tokenizer,
    system: str | None,
    tools: list[dict] | None = None,
) -> str:
    """The text a model continues to answer the last message (a user's or a tool result)."""
    messages = with_system(messages, system)
    if template == "chat":
        # a model whose template drops tools is asked through tunelab's (as training would)
        lent = TOOLS_TEMPLATE if tools and not renders_tools(tokenizer) else None
        return tokenizer.apply_chat_template(
            messages,
            tools=tools or None,
            chat_template=lent,
            tokenize=False,
            add_generation_prompt=True,
        )
    placeholder = [*messages, {"role": "assistant", "content": ""}]
    return "".join(s.text for s in plain_segments(placeholder, template)[:-1])
