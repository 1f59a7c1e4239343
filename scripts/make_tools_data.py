"""Convert the shipped tool-use training pool (../shared/data/tools/train/) into tunelab's chat
rows with tools (docs/tools.md): OpenAI `messages` with `tool_calls` and `tool` results, and a
per-row `tools` list of JSON schemas.

Sources, credited (licences and checksums in ../shared/data/SOURCES.md):
- glaive-function-calling-v2, LLaMA-Factory's demo sample (Apache-2.0): ShareGPT with
  function_call / observation turns; the rows that offer tools.
- Seal-Tools (Wu et al., NLPCC 2024; Apache-2.0), dev and both test splits: one instruction, a
  list of candidate APIs, the calls to make. Rows whose calls feed on another call's result
  (`API_call_N` as an argument) are left out: one reply cannot hold a call that needs a result
  it has not seen.
- API-Bank level 3 (Li et al., EMNLP 2023; Apache-2.0): dialogues that search for a tool
  (ToolSearcher), call it and answer; the tools a search returned are offered from then on.
- Gorilla APIBench TorchHub is left out: its targets are Python code (`torch.hub.load(...)`),
  not JSON calls.

Rows where no offered function fits (written here; the pool has 38 of them, all glaive's): a
tool model must also answer without a call when nothing it was given can do the job (BFCL's
irrelevance category asks exactly that). A Seal-Tools instruction is offered another Seal-Tools
row's functions (no name in common with the ones it calls) and answered with a decline in
glaive's words, naming what is on offer. They go to their own file, no_fit.jsonl (one per
training instruction), so a config sets their share by `data.mix` weight; the validation file
holds them too (VAL_NO_FIT_SHARE of its Seal-Tools rows), each made from a validation
instruction only, so no validation question is trained on in either form. near_miss.jsonl holds
the harder kind (scripts/tools_declines.py): an instruction offered only its own list's other
functions; the validation file holds one for each of its one-call Seal-Tools rows, so a recipe
chosen on validation is judged on both kinds.

Run as: python scripts/make_tools_data.py ../shared/data/tools/train data/tools
Writes train.jsonl and val.jsonl (a seeded 95/5 split of the pool by first question),
no_fit.jsonl and near_miss.jsonl, and prints what it kept and dropped."""

import ast
import json
import random
import sys
from pathlib import Path

from tools_declines import VAL_NO_FIT_SHARE, near_misses, no_fit

SEED = 34
DISTRACTORS = 3  # Seal-Tools: the other APIs offered beside the ones a row calls
TYPES = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
    "tuple": "array",
    "integer": "integer",
    "number": "number",
    "string": "string",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}


def schema(name: str, description: str, parameters: dict, required: list[str]) -> dict:
    properties = {
        key: {
            "type": TYPES.get(str(spec.get("type", "str")).split("[")[0].lower(), "string"),
            "description": spec.get("description", ""),
        }
        for key, spec in parameters.items()
    }
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


def call(name: str, arguments: dict) -> dict:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def glaive(path: Path) -> tuple[list[dict], int]:
    """ShareGPT rows that offer tools, kept in their own layout's meaning."""
    rows, dropped = [], 0
    for record in json.loads(path.read_text()):
        tools = json.loads(record.get("tools") or "[]")
        if not tools:
            dropped += 1
            continue
        messages = []
        for turn in record["conversations"]:
            role = turn["from"]
            if role == "human":
                messages.append({"role": "user", "content": turn["value"]})
            elif role == "gpt":
                messages.append({"role": "assistant", "content": turn["value"]})
            elif role == "function_call":
                value = json.loads(turn["value"])
                messages.append(
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [call(value["name"], value.get("arguments", {}))],
                    }
                )
            else:  # observation
                messages.append({"role": "tool", "content": turn["value"]})
        if messages[-1]["role"] != "assistant":
            dropped += 1
            continue
        functions = [
            schema(
                t["name"],
                t.get("description", ""),
                t.get("parameters", {}).get("properties", {}),
                t.get("parameters", {}).get("required", []),
            )
            for t in tools
        ]
        rows.append({"source": "glaive", "tools": functions, "messages": messages})
    return rows, dropped


def offered(apis: list[dict], called: set[str], rng: random.Random) -> list[dict]:
    """The APIs a row calls and up to DISTRACTORS of the others (Seal-Tools lists 10 to 20:
    thousands of prompt tokens a row for a small model), in the list's own order."""
    others = [a for a in apis if a["api_name"] not in called]
    kept = {id(a) for a in rng.sample(others, min(DISTRACTORS, len(others)))}
    return [a for a in apis if a["api_name"] in called or id(a) in kept]


def seal_tools(paths: list[Path]) -> tuple[list[dict], int]:
    rows, dropped, rng = [], 0, random.Random(SEED)
    for path in paths:
        for record in json.loads(path.read_text()):
            human, answer = (turn["value"] for turn in record["conversations"])
            listed = human.split("api_list = ", 1)[1].rsplit("\ntask_instruction = ", 1)
            apis = ast.literal_eval(listed[0].strip())
            instruction = (
                listed[1].split("\nOutput:")[0].strip().removeprefix('"').removesuffix('"')
            )
            calls = ast.literal_eval(answer)
            if "API_call_" in json.dumps([c["parameters"] for c in calls]):
                dropped += 1
                continue
            tools = [
                schema(a["api_name"], a["api_description"], a["parameters"], a["required"])
                for a in offered(apis, {c["api"] for c in calls}, rng)
            ]
            messages = [
                {"role": "user", "content": instruction},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [call(c["api"], c["parameters"]) for c in calls],
                },
            ]
            rows.append({"source": "seal_tools", "tools": tools, "messages": messages})
    return rows, dropped


def api_call(text: str) -> tuple[str, dict]:
    """`[Name(key='value', ...)]` -> (Name, {key: value})."""
    node = ast.parse(text.strip()[1:-1], mode="eval").body
    return node.func.id, {k.arg: ast.literal_eval(k.value) for k in node.keywords}


def api_bank(path: Path) -> tuple[list[dict], int]:
    rows, dropped = [], 0
    for record in json.loads(path.read_text()):
        try:
            rows.append(api_bank_row(record))
        except (ValueError, SyntaxError, AttributeError, KeyError):
            dropped += 1  # a line this reader cannot take apart
    return rows, dropped


def api_bank_row(record: dict) -> dict:
    tools, messages = {}, []
    for line in record["input"].splitlines():
        if line.startswith('{"apiCode"'):
            api = json.loads(line)
            tools[api["apiCode"]] = schema(
                api["apiCode"], api["description"], api["parameters"], list(api["parameters"])
            )
        elif line.startswith("User: "):
            messages.append({"role": "user", "content": line[6:].split("TIME: ")[0].strip()})
        elif line.startswith("AI: "):
            messages.append({"role": "assistant", "content": line[4:].strip()})
        elif line.startswith("API-Request: "):
            request, _, result = line[13:].partition("->")
            name, arguments = api_call(request)
            messages.append(
                {"role": "assistant", "content": "", "tool_calls": [call(name, arguments)]}
            )
            messages.append({"role": "tool", "content": result})
            found = ast.literal_eval(result) if result.startswith("{'name'") else None
            if isinstance(found, dict) and "input_parameters" in found:
                tools[found["name"]] = schema(
                    found["name"],
                    found["description"],
                    found["input_parameters"],
                    list(found["input_parameters"]),
                )
    output = record["output"]
    if output.startswith("API-Request: "):
        name, arguments = api_call(output[13:])
        messages.append({"role": "assistant", "content": "", "tool_calls": [call(name, arguments)]})
    else:
        messages.append({"role": "assistant", "content": output.removeprefix("AI: ").strip()})
    if not messages or messages[0]["role"] != "user":
        raise ValueError("no user turn")
    return {"source": "api_bank", "tools": list(tools.values()), "messages": messages}


def split_by_question(
    rows: list[dict], val_share: float, rng: random.Random
) -> tuple[list[dict], list[dict]]:
    """A seeded split that keeps every row of one first question on one side: API-Bank writes a
    dialogue as one row per step, all opening with the same question, and a step in each split
    would put validation questions in training."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["messages"][0]["content"], []).append(row)
    questions = list(groups)
    rng.shuffle(questions)
    train, val = [], []
    for question in questions:
        side = val if len(val) < len(rows) * val_share else train
        side += groups[question]
    rng.shuffle(train)
    return train, val


def write_rows(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(source: Path, out: Path) -> None:
    parts = {
        "glaive": glaive(source / "glaive_toolcall_en_demo.json"),
        "seal_tools": seal_tools(sorted((source / "seal_tools").glob("*.json"))),
        "api_bank": api_bank(source / "api_bank_lv3_train.json"),
    }
    rows = [row for kept, _ in parts.values() for row in kept]
    rng = random.Random(SEED)
    train, val = split_by_question(rows, 0.05, rng)
    declines = no_fit(train, 1.0, rng)
    val += no_fit(val, VAL_NO_FIT_SHARE, rng) + near_misses(val)  # both kinds judged on validation
    rng.shuffle(val)
    out.mkdir(parents=True, exist_ok=True)
    written = {"train": train, "val": val, "no_fit": declines, "near_miss": near_misses(train)}
    for name, part in written.items():
        write_rows(out / f"{name}.jsonl", part)
    for name, (kept, dropped) in parts.items():
        print(f"{name}: {len(kept)} rows kept, {dropped} left out")
    print(", ".join(f"{out / name}.jsonl: {len(part)} rows" for name, part in written.items()))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
