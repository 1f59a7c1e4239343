"""Tool calls: how a conversation carries them, how they become text, how text becomes calls.

In a conversation (tunelab's one shape, the one Transformers' chat templates read) an assistant
message may hold `tool_calls` ([{"type": "function", "function": {"name", "arguments": {...}}}],
arguments as an object), a `tool` message holds a call's result, and a row's `tools` lists the
functions as JSON schemas ({"type": "function", "function": {"name", "description",
"parameters"}}).

As text, where a model's own chat template renders no tools, tunelab uses the Hermes / Qwen
convention (TOOLS_TEMPLATE): the schemas in the system turn between <tools> tags, each call one
JSON object {"name": ..., "arguments": {...}} between <tool_call> tags, each result between
<tool_response> tags in a user turn. `parse_reply` reads a generated reply back into content and
calls (the server's `tool_calls`, BFCL's scoring)."""

import json
import re
from dataclasses import dataclass

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

# the system turn's words around the schemas (export_gguf's Ollama template writes the same)
TOOLS_INTRO = "You may call these functions (JSON schemas):"
CALL_HOWTO = 'To call one, write:\n<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>'

# tunelab's own ChatML template with tools (written for tunelab after the Hermes / Qwen
# convention). Turns end with the tokenizer's end-of-sequence token: SmolLM2's is <|im_end|>.
TOOLS_TEMPLATE = (
    # every newline is written as {{ "\n" }}: the {%- -%} tags trim the text around them
    "{%- set nl = '\\n' -%}"
    f"{{%- set TOOLS_INTRO = {json.dumps(TOOLS_INTRO)} -%}}"
    f"{{%- set CALL_HOWTO = {json.dumps(CALL_HOWTO)} -%}}"
    "{%- set system = messages[0].content if messages[0].role == 'system' else '' -%}"
    "{%- if tools -%}"
    "{{ '<|im_start|>system' ~ nl }}{%- if system -%}{{ system ~ nl ~ nl }}{%- endif -%}"
    "{{ TOOLS_INTRO ~ nl ~ '<tools>' ~ nl }}"
    "{%- for tool in tools -%}{{ tool | tojson ~ nl }}{%- endfor -%}"
    "{{ '</tools>' ~ nl ~ CALL_HOWTO }}"
    "{{ eos_token ~ nl }}"
    "{%- elif system -%}{{ '<|im_start|>system' ~ nl ~ system ~ eos_token ~ nl }}{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'tool' -%}"
    "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' -%}"
    "{{ '<|im_start|>user' }}{%- endif -%}"
    "{{ nl ~ '<tool_response>' ~ nl ~ message.content ~ nl ~ '</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' -%}"
    "{{ eos_token ~ nl }}{%- endif -%}"
    "{%- elif message.role == 'assistant' -%}"
    "{{ '<|im_start|>assistant' ~ nl }}"
    "{%- if message.reasoning_content -%}"
    "{{ '<think>' ~ nl ~ message.reasoning_content ~ nl ~ '</think>' ~ nl }}{%- endif -%}"
    "{{ message.content or '' }}"
    "{%- for call in message.tool_calls or [] -%}"
    "{%- if message.content or not loop.first -%}{{ nl }}{%- endif -%}"
    "{{ '<tool_call>' ~ nl ~ '{\"name\": ' ~ call.function.name | tojson ~ ', \"arguments\": ' "
    "~ call.function.arguments | tojson ~ '}' ~ nl ~ '</tool_call>' }}"
    "{%- endfor -%}"
    "{{ eos_token ~ nl }}"
    "{%- elif message.role != 'system' -%}"
    "{{ '<|im_start|>' ~ message.role ~ nl ~ message.content ~ eos_token ~ nl }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant' ~ nl }}{%- endif -%}"
)
PROBE_TOOL = "tunelab_probe_tool"


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict

    def as_message_part(self) -> dict:
        """The call as a chat template reads it (arguments an object)."""
        return {"type": "function", "function": {"name": self.name, "arguments": self.arguments}}

    def as_openai(self, call_id: str) -> dict:
        """The call as OpenAI's API sends it (arguments a JSON string)."""
        arguments = json.dumps(self.arguments, ensure_ascii=False)
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": self.name, "arguments": arguments},
        }


def calls_in(message: dict) -> list[ToolCall]:
    """An assistant message's `tool_calls` (tunelab's shape: arguments an object)."""
    return [
        ToolCall(call["function"]["name"], call["function"]["arguments"])
        for call in message.get("tool_calls") or []
    ]


def written_calls(calls: list[ToolCall]) -> str:
    """Calls as TOOLS_TEMPLATE writes them after the content: the reference a generated reply is
    held against (sft's ROUGE-L on call turns)."""
    return "\n".join(
        f"{CALL_OPEN}\n"
        + json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False)
        + f"\n{CALL_CLOSE}"
        for c in calls
    )


def same_calls(expected: list[ToolCall], made: list[ToolCall]) -> bool:
    """The same calls, in any order, each name and argument exact (no call expected: none made).
    The checker of sft's `call_accuracy` on the run's own rows; BFCL's looser one (accepted
    values, optional arguments) is bench/bfcl.py."""

    def key(call: ToolCall) -> str:
        return json.dumps([call.name, call.arguments], sort_keys=True, ensure_ascii=False)

    return sorted(map(key, expected)) == sorted(map(key, made))


def renders_tools(tokenizer) -> bool:
    """Whether the tokenizer's own chat template writes the tools and an assistant's calls
    (many templates, SmolLM2's among them, drop both without a word). Asked for every prompt
    with tools (each BFCL question, each served request): the probe is rendered once per
    template."""
    template = tokenizer.chat_template
    if not template:
        return False
    if template not in TEMPLATES_PROBED:
        TEMPLATES_PROBED[template] = probe_renders_tools(tokenizer)
    return TEMPLATES_PROBED[template]


TEMPLATES_PROBED: dict[str, bool] = {}  # template text -> whether it renders tools and calls


def probe_renders_tools(tokenizer) -> bool:
    tool = {"type": "function", "function": {"name": PROBE_TOOL, "parameters": {}}}
    call = ToolCall(PROBE_TOOL + "_called", {"x": 1}).as_message_part()
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
    ]
    try:
        text = tokenizer.apply_chat_template(messages, tools=[tool], tokenize=False)
    except Exception:  # a template that raises on tool turns renders no tools
        return False
    return PROBE_TOOL in text.replace(PROBE_TOOL + "_called", "") and PROBE_TOOL + "_called" in text


CALL_PATTERN = re.compile(re.escape(CALL_OPEN) + r"\s*(.*?)\s*" + re.escape(CALL_CLOSE), re.S)


def parse_reply(text: str) -> tuple[str, list[ToolCall]]:
    """A generated reply as (content, calls). A block that is not a JSON object with a string
    `name` and object `arguments` is no call: it stays in the content, as the model wrote it."""
    calls, kept, end = [], [], 0
    for match in CALL_PATTERN.finditer(text):
        call = call_of(match.group(1))
        if call is None:
            continue
        kept.append(text[end : match.start()])
        end = match.end()
        calls.append(call)
    kept.append(text[end:])
    return "".join(kept).strip(), calls


def call_of(block: str) -> ToolCall | None:
    try:
        value = json.loads(block)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    return ToolCall(value["name"], arguments) if isinstance(arguments, dict) else None


def split_reasoning(text: str) -> tuple[str | None, str]:
    """`<think>...</think>` at the start of a reply as (reasoning, the rest)."""
    stripped = text.lstrip()
    if not stripped.startswith(THINK_OPEN) or THINK_CLOSE not in stripped:
        return None, text
    inside, _, rest = stripped[len(THINK_OPEN) :].partition(THINK_CLOSE)
    return inside.strip(), rest.lstrip()
