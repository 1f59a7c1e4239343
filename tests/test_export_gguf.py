"""GGUF / Ollama export of runs on the real stories260K: the file holds the merged weights, the
run's prompt format and system message, and answers as the run does."""

import re

import pytest
from tests.helpers import assert_one_line_error, run_cli, train_tiny
from tests.lm_helpers import QA, sft_overrides
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunelab.assistant import load_assistant
from tunelab.generation import generate
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
