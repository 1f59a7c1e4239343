"""The Berkeley Function Calling Leaderboard (BFCL v4, non-live AST categories) on a loaded
model: each question asked through the chat template with its functions as `tools`, the reply
parsed into calls (data/tool_calls.py), and the calls judged by BFCL's own AST checker from the
`bfcl-eval` package (function name, required arguments, types, the accepted values of the
possible-answer files, "" = may be omitted; irrelevance: no call is right)."""

import copy
import functools
import json
import math
import random
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from tunelab.bench.sources import bench_dir
from tunelab.data.tool_calls import ToolCall, parse_reply
from tunelab.errors import TunelabError

# category (its files: BFCL_v4_<category>.json, JSON Lines) -> the checker's language
CATEGORIES = {
    "simple_python": "python",
    "simple_java": "java",
    "simple_javascript": "javascript",
    "multiple": "python",
    "parallel": "python",
    "parallel_multiple": "python",
    "irrelevance": "python",
}
CALLING = tuple(c for c in CATEGORIES if c != "irrelevance")
MAX_NEW_TOKENS = 256  # parallel questions ask for up to four calls with long arguments


@dataclass(frozen=True)
class Question:
    id: str
    category: str
    messages: list[dict]
    functions: list[dict]  # BFCL's function docs, as the checker reads them
    tools: list[dict]  # the same functions as the model is shown them (JSON schema types)
    answer: list[dict]  # BFCL's possible answers; [] for irrelevance


@functools.cache
def checker():
    """BFCL's `ast_checker` and its language enum. bfcl-eval's checker module imports its
    leaderboard's model registry (every API client it benchmarks) only to ask whether a model's
    function names had their dots replaced; tunelab's template keeps names as they are, so the
    registry is replaced by one that says so, and the API clients are never needed."""
    registry = types.ModuleType("bfcl_eval.constants.model_config")
    registry.MODEL_CONFIG_MAPPING = KeepsDots()
    sys.modules.setdefault("bfcl_eval.constants.model_config", registry)
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    return ast_checker, Language


class KeepsDots(dict):
    def __getitem__(self, model_name):
        return types.SimpleNamespace(underscore_to_dot=False)


def tools_of(functions: list[dict]) -> list[dict]:
    """BFCL's function docs as chat-template tools: BFCL's types (dict, float, tuple, Java's and
    JavaScript's) mapped to JSON schema's by BFCL's own table. Written here because the function
    that does it in bfcl-eval sits in a module that needs the Java and JavaScript parsers."""
    from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI

    def cast(schema: dict) -> dict:
        schema = dict(schema)
        schema["type"] = GORILLA_TO_OPENAPI.get(schema.get("type", "string"), "string")
        if "properties" in schema:
            schema["properties"] = {k: cast(v) for k, v in schema["properties"].items()}
        if isinstance(schema.get("items"), dict):
            schema["items"] = cast(schema["items"])
        return schema

    return [
        {"type": "function", "function": {**f, "parameters": cast(f["parameters"])}}
        for f in functions
    ]


def read_lines(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    except (OSError, ValueError) as error:
        raise TunelabError(f"{path}: {error}") from None


def read_questions(category: str, folder: Path, limit: int | None, seed: int = 0) -> list[Question]:
    """A category's questions (a seeded sample of `limit`), each with its possible answer. The
    functions the model sees carry BFCL's language hints (Java and JavaScript arguments are
    written as strings), as BFCL prompts every model."""
    from bfcl_eval.utils import _func_doc_language_specific_pre_processing as language_hints

    rows = read_lines(folder / f"BFCL_v4_{category}.json")
    answers = {}
    if category != "irrelevance":
        answers = {
            a["id"]: a["ground_truth"]
            for a in read_lines(folder / "possible_answer" / f"BFCL_v4_{category}.json")
        }
    if limit is not None and limit < len(rows):
        rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), limit))]
    return [
        Question(
            row["id"],
            category,
            row["question"][0],
            row["function"],
            tools_of(language_hints(copy.deepcopy(row["function"]), category)),
            answers.get(row["id"], []),
        )
        for row in rows
    ]


def judge(question: Question, calls: list[ToolCall]) -> tuple[bool, str]:
    """BFCL's verdict on a reply's calls, with its reason."""
    if question.category == "irrelevance":
        return (not calls, "" if not calls else "called a function where none fits")
    if not calls:
        return False, "no call"
    ast_checker, language = checker()
    outcome = ast_checker(
        question.functions,
        [{call.name: call.arguments} for call in calls],
        question.answer,
        getattr(language, CATEGORIES[question.category].upper()),
        question.category,
        "tunelab",
    )
    return bool(outcome["valid"]), "; ".join(str(e) for e in outcome.get("error", []))


PREFIX = "bfcl_"
NAMES = tuple(PREFIX + c for c in CATEGORIES)  # as `tunelab bench --tasks` and eval.bench name them


def bfcl_folder() -> Path:
    """BFCL sits beside the benchmark files: ../shared/data/tools/bfcl."""
    return bench_dir().parent / "tools" / "bfcl"


def score_category(
    model, tokenizer, name: str, limit: int | None, seed: int, batch_size: int
) -> dict:
    """One category's accuracy with its standard error, each question's outcome (for the paired
    difference against the base), and the first failures with BFCL's reasons."""
    from tunelab.data.templates import generation_prompt
    from tunelab.generation import generate

    questions = read_questions(name.removeprefix(PREFIX), bfcl_folder(), limit, seed)
    # the model's template where it writes tools, tunelab's otherwise (generation_prompt)
    prompts = [generation_prompt(q.messages, "chat", tokenizer, None, q.tools) for q in questions]
    replies = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=MAX_NEW_TOKENS,
        batch_size=batch_size,
        add_special_tokens=False,
        description=name,
    )
    verdicts = [judge(q, parse_reply(r)[1]) for q, r in zip(questions, replies, strict=True)]
    outcomes = [1.0 if ok else 0.0 for ok, _ in verdicts]
    n, accuracy = len(outcomes), sum(outcomes) / len(outcomes)
    failures = [
        {"id": q.id, "reply": r[:300], "reason": why}
        for q, r, (ok, why) in zip(questions, replies, verdicts, strict=True)
        if not ok
    ]
    return {
        "metric": "acc",
        "score": accuracy,
        "stderr": math.sqrt(accuracy * (1 - accuracy) / (n - 1)) if n > 1 else 0.0,
        "n": n,
        "correct": int(sum(outcomes)),
        "outcomes": outcomes,
        "example": prompts[0],
        "failures": failures[:5],
    }
