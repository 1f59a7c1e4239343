"""BFCL scoring: the shipped question and possible-answer files read, calls judged by BFCL's own
AST checker (names, required arguments, types, accepted values, "" = may be omitted, any order
for parallel calls, no call for irrelevance), the functions shown to the model as JSON-schema
tools, and a model's replies scored end to end."""

import pytest
from tests.lm_helpers import STORIES

from tunelab.bench.bfcl import CATEGORIES, bfcl_folder, judge, read_questions, score_category
from tunelab.bench.tasks import pick
from tunelab.data.tool_calls import ToolCall, parse_reply
from tunelab.models.loader import load_causal_lm, load_tokenizer


def questions(category: str) -> dict:
    return {q.id: q for q in read_questions(category, bfcl_folder(), None)}


def accepted(values: list):
    """The first accepted value of a possible answer, nested answers built the same way."""
    return built(next(v for v in values if v != ""))


def built(value):
    if isinstance(value, dict):  # a dict argument: each key's accepted values
        return {k: accepted(v) for k, v in value.items() if any(x != "" for x in v)}
    if isinstance(value, list):
        return [built(item) for item in value]
    return value


def expected_calls(question) -> list[ToolCall]:
    return [
        ToolCall(name, {k: accepted(v) for k, v in arguments.items() if any(x != "" for x in v)})
        for answer in question.answer
        for name, arguments in answer.items()
    ]


@pytest.mark.parametrize(
    "category,count,right",
    # parallel_multiple_12 and _26: BFCL's answer names a parameter its function lacks
    [
        ("simple_python", 400, 400),
        ("multiple", 200, 200),
        ("parallel", 200, 200),
        ("parallel_multiple", 200, 198),
    ],
)
def test_bfcls_own_answers_pass_its_checker(category, count, right):
    read = list(questions(category).values())
    assert len(read) == count
    assert sum(judge(q, expected_calls(q))[0] for q in read) == right


def test_wrong_calls_fail_for_bfcls_reasons():
    q = questions("simple_python")["simple_python_0"]  # triangle area: base 10, height 5
    right = {"base": 10, "height": 5}
    assert judge(q, [ToolCall("calculate_triangle_area", right)]) == (True, "")
    assert judge(q, [ToolCall("calculate_triangle_area", right | {"unit": "units"})])[0]
    wrong = [
        ([ToolCall("calculate_triangle_area", {"base": 10, "height": 6})], "Invalid value"),
        ([ToolCall("calculate_triangle_area", {"base": 10})], "Missing required parameter"),
        ([ToolCall("calculate_triangle_area", right | {"colour": "red"})], "Unexpected parameter"),
        ([ToolCall("triangle_area", right)], "Function name"),
        ([ToolCall("calculate_triangle_area", {"base": "10", "height": 5})], "type"),
        ([ToolCall("calculate_triangle_area", right)] * 2, "Wrong number of functions"),
        ([], "no call"),
    ]
    for calls, reason in wrong:
        ok, why = judge(q, calls)
        assert not ok and reason.lower() in why.lower(), (calls, why)


def test_parallel_calls_match_in_any_order_and_irrelevance_wants_none():
    q = questions("parallel")["parallel_0"]
    calls = expected_calls(q)
    assert len(calls) > 1 and judge(q, calls[::-1])[0] and not judge(q, calls[:-1])[0]
    irrelevant = questions("irrelevance")["irrelevance_0"]
    assert judge(irrelevant, [])[0]
    name = irrelevant.functions[0]["name"]
    assert not judge(irrelevant, [ToolCall(name, {"weight": 70, "height": 1.8})])[0]


def test_java_arguments_are_shown_and_judged_as_java_strings():
    q = questions("simple_java")["simple_java_6"]  # three Java booleans
    shown = q.tools[0]["function"]["parameters"]["properties"]["refreshMetadata"]
    assert shown["type"] == "string" and "Java boolean" in shown["description"]
    assert q.functions[0]["parameters"]["properties"]["refreshMetadata"]["type"] == "boolean"
    name = q.functions[0]["name"]
    as_text = {"refreshMetadata": "true", "append": "true", "keepState": "true"}
    assert judge(q, [ToolCall(name, as_text)])[0]
    assert not judge(q, [ToolCall(name, {**as_text, "append": "false"})])[0]
    assert not judge(q, [ToolCall(name, {**as_text, "append": True})])[0]


def test_bfcl_types_become_json_schema_types():
    q = questions("simple_python")["simple_python_0"]
    assert q.functions[0]["parameters"]["type"] == "dict"
    assert q.tools[0]["function"]["parameters"]["type"] == "object"
    floats = [
        q
        for q in questions("parallel_multiple").values()
        if '"type": "float"' in str(q.functions).replace("'", '"')
    ]
    assert floats and '"type": "float"' not in str(floats[0].tools).replace("'", '"')


def test_a_reply_is_parsed_and_judged():
    q = questions("simple_python")["simple_python_0"]
    reply = (
        'Let me compute that.\n<tool_call>\n{"name": "calculate_triangle_area", '
        '"arguments": {"base": 10, "height": 5}}\n</tool_call>'
    )
    assert judge(q, parse_reply(reply)[1])[0]


def test_every_category_is_a_benchmark_name_and_a_model_is_scored_on_it():
    assert pick("bfcl") == [f"bfcl_{c}" for c in CATEGORIES]
    model, tokenizer = load_causal_lm(STORIES), load_tokenizer(STORIES)
    calling = score_category(model, tokenizer, "bfcl_simple_python", 2, 0, 2)
    irrelevance = score_category(model, tokenizer, "bfcl_irrelevance", 2, 0, 2)
    # a 260K-parameter story model writes no valid call: every calling question is wrong and
    # every irrelevance question right
    assert (calling["n"], calling["correct"], calling["score"]) == (2, 0, 0.0)
    assert (irrelevance["n"], irrelevance["correct"], irrelevance["score"]) == (2, 2, 1.0)
    assert calling["failures"][0]["reason"] == "no call"
    assert "<tools>" in calling["example"] and calling["example"].endswith("assistant\n")
    assert tokenizer.chat_template is None  # the tools template was lent, not left behind


def test_a_run_keeps_each_categorys_counts_and_the_tuned_models_first_failures():
    from tunelab.bench.report import table_lines
    from tunelab.bench.run import side_by_side

    def scored(outcomes: list[float], failures: list[dict]) -> dict:
        right = sum(outcomes)
        return {"metric": "acc", "n": len(outcomes), "score": right / len(outcomes),
                "stderr": 0.1, "correct": int(right), "outcomes": outcomes, "seconds": 1.0,
                "failures": failures}  # fmt: skip

    miss = {"id": "simple_python_7", "reply": "Sure!", "reason": "no call"}
    base = {"bfcl_simple_python": scored([0.0, 0.0, 0.0], [miss])}
    tuned = {"bfcl_simple_python": scored([1.0, 1.0, 0.0], [miss])}
    row = side_by_side(base, tuned)["bfcl_simple_python"]
    assert (row["base_correct"], row["correct"], row["n"]) == (0, 2, 3)
    assert row["failures"] == [miss]
    line = table_lines({"scores": {"bfcl_simple_python": row}})[-1]
    assert "0.000 ± 0.100 (0/3)" in line and "0.667 ± 0.100 (2/3)" in line  # the report's row
