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
irrelevance category asks exactly that). For a seeded NO_FIT_SHARE of the Seal-Tools rows, the
same instruction is offered another Seal-Tools row's functions (no name in common with the ones
it calls) and answered with a decline in glaive's words, naming what is on offer.

Run as: python scripts/make_tools_data.py ../shared/data/tools/train data/tools
Writes train.jsonl and val.jsonl (a seeded 95/5 split) and prints what it kept and dropped."""

import ast
import json
import random
import sys
from pathlib import Path

SEED = 34
DISTRACTORS = 3  # Seal-Tools: the other APIs offered beside the ones a row calls
NO_FIT_SHARE = 0.2  # of the Seal-Tools rows, copied with functions that do not fit
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


def names_of(tools: list[dict]) -> set[str]:
    return {tool["function"]["name"] for tool in tools}


def no_fit(rows: list[dict], rng: random.Random) -> list[dict]:
    """NO_FIT_SHARE of the (single-turn) rows again, each offered the functions of another row
    that shares no name with its own and answered without a call."""
    picked = rng.sample(rows, round(len(rows) * NO_FIT_SHARE))
    declined = []
    for row in picked:
        others = rng.choice(rows)["tools"]
        while names_of(others) & names_of(row["tools"]):
            others = rng.choice(rows)["tools"]
        offer = ", ".join(sorted(names_of(others)))
        answer = (
            "I'm sorry, but I can't do that with the functions provided to me: "
            f"I can only use {offer}."
        )
        messages = [row["messages"][0], {"role": "assistant", "content": answer}]
        declined.append({"source": "seal_tools_no_fit", "tools": others, "messages": messages})
    return declined


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


def main(source: Path, out: Path) -> None:
    parts = {
        "glaive": glaive(source / "glaive_toolcall_en_demo.json"),
        "seal_tools": seal_tools(sorted((source / "seal_tools").glob("*.json"))),
        "api_bank": api_bank(source / "api_bank_lv3_train.json"),
    }
    rows = [row for kept, _ in parts.values() for row in kept]
    rows += no_fit(parts["seal_tools"][0], random.Random(SEED))
    random.Random(SEED).shuffle(rows)
    cut = round(len(rows) * 0.95)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", rows[:cut]), ("val", rows[cut:])):
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in part:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    for name, (kept, dropped) in parts.items():
        print(f"{name}: {len(kept)} rows kept, {dropped} left out")
    print(f"seal_tools_no_fit: {len(rows) - sum(len(kept) for kept, _ in parts.values())} rows")
    print(f"{out / 'train.jsonl'}: {cut} rows; {out / 'val.jsonl'}: {len(rows) - cut} rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
