"""GGUF / Ollama export of runs on the real stories260K: the file holds the merged weights, the
run's prompt format and system message, and answers as the run does."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.helpers import assert_one_line_error, run_cli, train_tiny
from tests.lm_helpers import QA, STORIES, sft_overrides
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunelab.assistant import load_assistant
from tunelab.data.tool_calls import TOOLS_TEMPLATE
from tunelab.export.gguf import modelfile
from tunelab.generation import generate
from tunelab.models.loader import load_tokenizer
from tunelab.pipeline import load_config, run

QUESTIONS = [q for q, _ in QA]
SYSTEM = "You answer questions about animals."


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gguf")
    extra = ["train.epochs=3", "train.lr=0.01", f"task.system={SYSTEM}"]
    run(load_config(None, sft_overrides(tmp_path, "lora", *extra)))
    return tmp_path / "run"


def export(run_dir, out, *options) -> tuple[int, str]:
    return run_cli("export", run_dir, "--out", out, *options)


def test_f32_gguf_answers_as_the_run_in_transformers(sft_run, tmp_path):
    code, output = export(sft_run, tmp_path / "g", "--format", "gguf", "--quant", "f32")
    assert code == 0, output
    name = "run-f32.gguf"
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "g", gguf_file=name)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "g", gguf_file=name)
    assistant = load_assistant(sft_run)
    prompts = [assistant.prompt([{"role": "user", "content": q}]) for q in QUESTIONS]
    # the chat template inside the file renders the run's own prompt, system message included
    rendered = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
        )
        for q in QUESTIONS
    ]
    assert rendered == prompts and SYSTEM in prompts[0]
    # the weights are the run's: the same greedy answers. With the run's tokenizer: the one that
    # Transformers rebuilds from a GGUF's SentencePiece vocabulary splits some words otherwise
    # ("say" as "sa"+"y"), which llama.cpp, reading the same vocabulary, does not.
    expected = assistant.answer(QUESTIONS, max_new_tokens=12)
    assert generate(model, assistant.tokenizer, prompts, max_new_tokens=12) == expected


def test_ollama_export_writes_a_modelfile_beside_the_gguf(sft_run, tmp_path):
    code, output = export(sft_run, tmp_path / "o", "--format", "ollama", "--quant", "q8_0")
    assert code == 0, output
    modelfile = (tmp_path / "o" / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./run-q8_0.gguf\n")
    assert (tmp_path / "o" / "run-q8_0.gguf").stat().st_size > 100_000
    template = re.search(r'TEMPLATE """(.*?)"""', modelfile, re.S).group(1)
    assert "Question: {{ .Content }}" in template  # the run's qa template, in Go
    assert f'SYSTEM """{SYSTEM}"""' in modelfile
    assert 'PARAMETER stop "</s>"' in modelfile


def test_exports_a_gguf_cannot_hold_are_one_line_errors(sft_run, tmp_path, model_dirs, toy_csv):
    classifier = tmp_path / "classifier"
    train_tiny(model_dirs["bert"], toy_csv, classifier)
    code, output = export(classifier, tmp_path / "c", "--format", "gguf")
    assert_one_line_error(code, output, "classifier head")
    code, output = export(sft_run, tmp_path / "q", "--format", "gguf", "--quant", "q3")
    assert_one_line_error(code, output, "--quant", "q3")
    code, output = export(sft_run, tmp_path / "f", "--format", "onnx")
    assert_one_line_error(code, output, "--format", "onnx")
    prompt_run = tmp_path / "prompt"
    prompt_run.mkdir()
    run(load_config(None, sft_overrides(prompt_run, "prompt_tuning", "train.epochs=1")))
    code, output = export(prompt_run / "run", tmp_path / "p", "--format", "gguf")
    assert_one_line_error(code, output, "prompt_tuning")


@pytest.mark.parametrize("command", [["predict", "some text"], ["eval", "--data", "x.csv"],
                                     ["quantize"]])  # fmt: skip
def test_classifier_commands_on_an_sft_run_name_the_run_kind(sft_run, command):
    code, output = run_cli(command[0], sft_run, *command[1:])
    assert_one_line_error(code, output, "is a sft run")


TOOL_CONVERSATION = {
    "System": "Be brief.",
    "Tools": [{"Type": "function", "Function": {"name": "get_weather", "parameters": {}}}],
    "Messages": [
        {"Role": "user", "Content": "Weather in Rome and Oslo?"},
        {
            "Role": "assistant",
            "Content": "",
            "ToolCalls": [
                {"Function": {"Name": "get_weather", "Arguments": {"city": "Rome"}}},
                {"Function": {"Name": "get_weather", "Arguments": {"city": "Oslo"}}},
            ],
        },
        {"Role": "tool", "Content": "25 C"},
        {"Role": "tool", "Content": "3 C"},
        {"Role": "assistant", "Content": "Rome 25 C, Oslo 3 C."},
        {"Role": "user", "Content": "Thanks"},
    ],
}


def as_chat_messages(data: dict) -> tuple[list[dict], list[dict]]:
    """The same conversation as Transformers' chat template reads it."""
    messages = [{"role": "system", "content": data["System"]}]
    for m in data["Messages"]:
        calls = [
            {"type": "function", "function": {"name": c["Function"]["Name"],
                                              "arguments": c["Function"]["Arguments"]}}
            for c in m.get("ToolCalls", [])
        ]  # fmt: skip
        messages.append({"role": m["Role"], "content": m["Content"]} | ({"tool_calls": calls}
                                                                        if calls else {}))  # fmt: skip
    tools = [{"type": t["Type"], "function": t["Function"]} for t in data["Tools"]]
    return messages, tools


def without_json_spacing(text: str) -> str:
    """Ollama writes JSON compactly with sorted map keys, Transformers with spaces."""
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")))
        except ValueError:
            lines.append(line)
    return "\n".join(lines)


def test_the_ollama_tools_template_writes_what_training_wrote(tmp_path):
    """The Modelfile of a run trained with tools, executed by Go's text/template (Ollama's engine)
    on Ollama's message shapes, writes the prompt the run's chat template wrote in training."""
    if shutil.which("go") is None:
        if os.environ.get("TUNELAB_REQUIRE_GO") == "1":  # CI: a missing Go fails
            pytest.fail("Go is not installed (scripts/setup.sh installs Debian's golang-go)")
        pytest.skip("needs Go (apt install golang-go)")
    tokenizer = load_tokenizer(STORIES)
    tokenizer.chat_template = TOOLS_TEMPLATE
    record = SimpleNamespace(template="chat", system=None)
    modelfile_text = modelfile("run.gguf", record, tokenizer)
    template = re.search(r'TEMPLATE """(.*?)"""', modelfile_text, re.S).group(1)
    (tmp_path / "template.txt").write_text(template)
    (tmp_path / "data.json").write_text(json.dumps(TOOL_CONVERSATION))
    program = Path(__file__).parent / "assets" / "ollama_template.go"
    go = subprocess.run(
        ["go", "run", str(program), str(tmp_path / "template.txt"), str(tmp_path / "data.json")],
        capture_output=True,
        text=True,
        env={**os.environ, "GOCACHE": str(tmp_path / "gocache"), "GOFLAGS": "-mod=mod"},
    )
    assert go.returncode == 0, go.stderr
    messages, tools = as_chat_messages(TOOL_CONVERSATION)
    trained = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=True
    )
    assert without_json_spacing(go.stdout) == without_json_spacing(trained)
    assert f'PARAMETER stop "{tokenizer.eos_token}"' in modelfile_text
