"""Generation from sft runs on stories260K: a tiny model learns Q&A pairs and stops at EOS;
generate, chat, data preview, merged export, few-shot, and a mixing comparison."""

import json

import pytest
from tests.helpers import assert_one_line_error, run_cli
from tests.lm_helpers import QA, sft_overrides, write_jsonl

from tunelab.assistant import load_assistant
from tunelab.pipeline import load_config, run


@pytest.fixture(scope="module")
def learned_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sft")
    summary = run(
        load_config(None, sft_overrides(tmp_path, "full", "train.epochs=25", "train.lr=0.003"))
    )
    return tmp_path / "run", summary


def test_a_tiny_model_learns_qa_pairs_and_stops_at_eos(learned_run):
    run_dir, summary = learned_run
    after = json.loads((run_dir / "eval_after.json").read_text())
    # greedy answers are the references exactly: nothing generated after EOS
    assert [r["answer"] for r in after["answers"]] == [a for _, a in QA]
    assert summary["key_fact_hit_rate_before"] == 0.0 and summary["key_fact_hit_rate"] == 1.0
    assert summary["perplexity"] < summary["perplexity_before"] / 10
    for name in ("report.md", "report.html", "plots/curves.png", "plots/scores.png", "model"):
        assert (run_dir / name).exists(), name


def test_generate_reloads_the_run_and_answers(learned_run):
    run_dir, _ = learned_run
    code, output = run_cli(
        "generate", run_dir, "--prompt", "What do cats say?", "--max-new-tokens", "12"
    )
    assert code == 0, output
    assert json.loads(output.strip().splitlines()[-1])["answer"] == "Cats say meow."
    assistant = load_assistant(run_dir)
    assert assistant.answer(["Who likes honey?"], max_new_tokens=12) == ["Bears like honey."]


def test_a_vanishing_temperature_is_greedy_and_impossible_sampling_a_usage_error(learned_run):
    """Issue 36: --temperature 1e-30 overflowed the softmax; --top-p 0 and 1e308 were taken."""
    run_dir, _ = learned_run
    question = ["--prompt", "What do cats say?", "--max-new-tokens", "12"]
    code, output = run_cli("generate", run_dir, *question, "--temperature", "1e-30")
    assert code == 0, output
    assert json.loads(output.strip().splitlines()[-1])["answer"] == "Cats say meow."
    for option, value in (("--top-p", "0"), ("--temperature", "1e308")):
        code, output = run_cli("generate", run_dir, *question, option, value)
        assert code == 2 and option in output and "Traceback" not in output, output


def test_generation_stays_within_the_models_context(learned_run, capsys):
    """Issue 36: --max-new-tokens 100000 ran until the process was killed, a prompt past the
    context and an empty prompt were accepted, a chat history past the context was sent whole."""
    run_dir, _ = learned_run
    code, output = run_cli("generate", run_dir, "--prompt", "What do cats say?",
                           "--max-new-tokens", "100000")  # fmt: skip
    assert code == 0, output  # cut to the 512 tokens of stories260K's context; EOS comes first
    assert json.loads(output.strip().splitlines()[-1])["answer"] == "Cats say meow."
    code, output = run_cli("generate", run_dir, "--prompt", "cat " * 600)
    assert_one_line_error(code, output, "fills the model's context of 512 tokens")
    code, output = run_cli("generate", run_dir, "--prompt", " ")
    assert_one_line_error(code, output, "--prompt", "empty question")
    assistant = load_assistant(run_dir)
    exchange = [
        {"role": "user", "content": "cat " * 100},
        {"role": "assistant", "content": "Meow."},
    ]
    history = [*exchange * 3, {"role": "user", "content": "What do cats say?"}]
    kept = assistant.fitted(history, max_new_tokens=64)
    assert kept[-1] == history[-1] and len(kept) < len(history) and len(kept) % 2 == 1
    assert assistant.prompt_tokens(kept) + 64 <= 512
    assert "the chat outgrew the model's context" in capsys.readouterr().err


def test_data_preview_marks_the_trained_tokens(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("task:\n  name: sft\n")
    code, output = run_cli(
        "data", "preview", config, *sft_overrides(tmp_path, "lora"), "--rows", "1"
    )
    assert code == 0, output
    marked = output.split("[[", 1)[1].split("]]", 1)[0]
    assert marked.strip().rstrip("</s>").strip() in {a for _, a in QA}
    assert "Question:" in output.split("[[", 1)[0]


def test_few_shot_is_the_no_training_baseline(tmp_path):
    summary = run(load_config(None, sft_overrides(tmp_path, "few_shot", "method.shots=2")))
    assert summary["parameters"]["trainable"] == 0 and summary["epochs_run"] == 0
    assert summary["key_fact_hit_rate"] == summary["key_fact_hit_rate_before"]
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert len(info["shots"]) == 4  # two conversations of a question and an answer


def test_a_merged_lora_sft_export_generates_like_the_run(tmp_path):
    from transformers import AutoModelForCausalLM

    from tunelab.generation import generate

    run(load_config(None, sft_overrides(tmp_path, "lora", "train.epochs=3", "train.lr=0.01")))
    code, output = run_cli("export", tmp_path / "run", "--out", tmp_path / "merged", "--merge")
    assert code == 0, output
    assistant = load_assistant(tmp_path / "run")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    prompt = assistant.prompt([{"role": "user", "content": "What do cats say?"}])
    assert generate(merged, assistant.tokenizer, [prompt], 12) == assistant.reply(
        [prompt], max_new_tokens=12
    )


def test_chat_streams_answers_with_the_run_template(learned_run):
    from typer.testing import CliRunner

    from tunelab.cli import app

    run_dir, _ = learned_run
    result = CliRunner().invoke(
        app, ["chat", str(run_dir), "--temperature", "0", "--max-new-tokens", "12", "--no-history"],
        input="What do cats say?\nWho likes honey?\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Cats say meow." in result.output and "Bears like honey." in result.output


def test_compare_shows_what_mixing_costs_on_the_general_set(tmp_path):
    general = write_jsonl(
        tmp_path / "general.jsonl",
        [{"instruction": f"Count to {n}.", "input": "", "output": " ".join(str(i) for i in range(1, n + 1))}
         for n in range(2, 8)],
    )  # fmt: skip
    base = tmp_path / "base.yaml"
    base.write_text("task:\n  name: sft\n")  # the experiment's overrides carry the rest
    overrides = sft_overrides(
        tmp_path, "lora", "train.epochs=2", "train.lr=0.01", f"eval.general={general}"
    )
    experiment = tmp_path / "mixing.yaml"
    experiment.write_text(
        json.dumps(
            {
                "base": str(base),
                "output_dir": str(tmp_path / "cmp"),
                "overrides": [o for o in overrides if not o.startswith("output.dir")],
                "variants": [
                    {"name": "domain_only", "overrides": []},
                    {
                        "name": "mixed",
                        "overrides": [f"data.mix=[{{path: {general}, weight: 1.0}}]"],
                    },
                ],
            }
        )
    )
    code, output = run_cli("compare", experiment)
    assert code == 0, output
    rows = json.loads((tmp_path / "cmp" / "leaderboard.json").read_text())
    by_name = {r["method"]: r for r in rows}
    assert set(by_name) == {"domain_only", "mixed", "before"}
    trained = [by_name["domain_only"], by_name["mixed"]]
    assert all(
        r["general_rouge_l"] is not None and r["score_name"] == "key_fact_hit_rate" for r in trained
    )
    assert by_name["before"]["score"] == by_name["domain_only"]["score_before"]
    summary = json.loads((tmp_path / "cmp" / "mixed" / "data_summary.json").read_text())
    assert summary["mix"][str(general)] == 22  # weight 1.0: as many rows as the 22 training rows
    assert "general ROUGE-L after" in (tmp_path / "cmp" / "leaderboard.md").read_text()
