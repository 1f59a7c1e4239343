"""tunelab bench: the shipped benchmark files parse to the counts SOURCES.md gives, the scores
are lm-eval's over local files only, an adapter is applied (a damaged one scores lower than its
base), and the gate's exit code follows a loss beyond noise."""

import json
import math
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from tests.lm_helpers import sft_overrides
from typer.testing import CliRunner, Result

from tunelab.artifacts import write_checksums
from tunelab.bench.run import BenchSettings, gate_failures, load_target, paired, score
from tunelab.bench.sources import BENCHMARKS, bench_dir
from tunelab.bench.tasks import pick, subset, write_tasks
from tunelab.cli import app
from tunelab.errors import TunelabError
from tunelab.pipeline import load_config, run
from tunelab.report.leaderboard import board_rows, write_leaderboard

SOURCES = Path(__file__).resolve().parents[2] / "shared" / "data" / "SOURCES.md"


def counted_rows(source: str) -> int:
    """The row count SOURCES.md gives a benchmark file (its first number in the count column)."""
    for line in SOURCES.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[1].startswith(f"`data/bench/{source}`"):
            return int(re.match(r"[\d,]+", cells[-3]).group().replace(",", ""))
    raise AssertionError(f"{source} not in SOURCES.md")


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_every_shipped_benchmark_parses_to_the_rows_sources_counts(name):
    benchmark = BENCHMARKS[name]
    docs = benchmark.read(bench_dir())
    scored = docs[benchmark.scored_split]
    assert len(scored) == counted_rows(benchmark.source)
    assert len({json.dumps(d, sort_keys=True) for d in scored}) > 0.99 * len(scored)


def test_the_fields_match_what_lm_evals_own_tasks_read():
    folder = bench_dir()
    arc = BENCHMARKS["arc_easy"].read(folder)["test"]
    assert all(d["answerKey"] in d["choices"]["label"] for d in arc)
    swag = BENCHMARKS["hellaswag"].read(folder)["test"]
    assert all(len(d["endings"]) == 4 and d["label"] in "0123" for d in swag)
    assert swag[0]["activity_label"] == "Roof shingle removal"
    mmlu = BENCHMARKS["mmlu"].read(folder)
    assert all(len(d["choices"]) == 4 and 0 <= d["answer"] < 4 for d in mmlu["test"])
    assert len({d["subject"] for d in mmlu["test"]}) == 57 and len(mmlu["train"]) == 285
    truthful = BENCHMARKS["truthfulqa_mc1"].read(folder)["test"]
    assert not truthful[0]["question"].startswith("\ufeff")  # the BOM is not in the question
    assert all(d["mc1_targets"]["labels"][0] == 1 for d in truthful)


def test_a_seeded_subset_is_the_same_documents_every_time():
    docs = [{"i": i} for i in range(500)]
    first = subset(docs, 50, seed=0)
    assert first == subset(docs, 50, seed=0) and first != subset(docs, 50, seed=1)
    assert [d["i"] for d in first] == sorted(d["i"] for d in first)


def test_an_unknown_benchmark_is_a_one_line_error():
    assert pick("quick")[0] == "arc_easy"
    with pytest.raises(TunelabError, match="unknown benchmark mmlux"):
        pick("arc_easy,mmlux")


def test_the_paired_difference_agrees_with_its_closed_form():
    base = {"score": 0.6, "outcomes": [1, 1, 1, 0, 0] * 20}
    tuned = {"score": 0.4, "outcomes": [1, 0, 0, 1, 0] * 20}
    result = paired(base, tuned)
    diffs = [t - b for b, t in zip(base["outcomes"], tuned["outcomes"], strict=True)]
    mean = sum(diffs) / 100
    stderr = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 99 / 100)
    assert result["difference"] == pytest.approx(-0.2) and result["stderr"] == pytest.approx(stderr)
    assert result["beyond_noise"]  # -0.2 with a standard error of about 0.07
    row = {"base": 0.6, "tuned": 0.4, **result}
    assert gate_failures({"arc_easy": row}, drop_points=5)
    assert not gate_failures({"arc_easy": row}, drop_points=25)  # lost 20 points, not 25


def test_the_task_folder_holds_lm_evals_definition_pointed_at_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path))
    folder = write_tasks(["arc_easy"], bench_dir(), limit=10)
    config = (folder / "tunelab_arc_easy.yaml").read_text()
    assert "include: " in config and "lm_eval/tasks/arc/arc_easy.yaml" in config
    assert "dataset_path: json" in config and "allenai" not in config
    assert len((folder / "arc_easy.test.jsonl").read_text().splitlines()) == 10


def bench_cli(*args: str) -> Result:
    """`tunelab bench` in this process: the exit code and what it printed, without a second
    start of Python, torch and lm-eval."""
    return CliRunner().invoke(app, ["bench", *args])


@pytest.fixture(scope="module")
def smollm2_run(tmp_path_factory):
    """A LoRA run of the embedded SmolLM2 trained for a few steps on a toy Q&A set: close to its
    base on the benchmarks."""
    tmp = tmp_path_factory.mktemp("bench")
    rows = [{"question": f"What is {i} plus {i}?", "answer": f"It is {2 * i}."} for i in range(16)]
    (tmp / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    overrides = [
        "model.name=smollm2-135m",
        "task.name=sft",
        "task.template=chat",
        f"data.path={tmp / 'train.jsonl'}",
        f"data.test_path={tmp / 'train.jsonl'}",
        "data.split=[0.9,0.1,0.0]",
        "method.name=lora",
        "train.epochs=1",
        "train.batch_size=8",
        "train.lr=1e-5",
        "eval.max_new_tokens=4",
        "eval.generate_limit=2",
        f"output.dir={tmp / 'run'}",
    ]
    run(load_config(None, overrides))
    return tmp / "run"


def damage(run_dir: Path, into: Path) -> Path:
    """The same run with its LoRA B matrices set large: the adapter now rules every answer (a
    bad model saved as a run saves it, checksums included: the gate must catch it, not the
    loader)."""
    shutil.copytree(run_dir, into)
    weights = into / "adapter" / "adapter_model.safetensors"
    state = load_file(weights)
    torch.manual_seed(0)
    for key, tensor in state.items():
        if "lora_B" in key:
            state[key] = tensor.normal_(0, 20.0)
    save_file(state, weights)
    write_checksums(weights.parent)
    return into


@pytest.mark.slow
def test_the_gate_fails_a_damaged_adapter_and_passes_its_base(smollm2_run, tmp_path):
    kept = bench_cli(str(smollm2_run), "--tasks", "piqa", "--limit", "20", "--gate", "5")
    assert kept.exit_code == 0, kept.output[-2000:]
    result = json.loads((smollm2_run / "bench.json").read_text())["scores"]["piqa"]
    assert result["n"] == 20 and result["difference"] == 0.0  # a few steps at lr 1e-5
    assert "## Standard benchmarks" in (smollm2_run / "report.md").read_text()  # the UI shows it
    damaged_run = damage(smollm2_run, tmp_path / "damaged")
    # PIQA: SmolLM2 is well above chance (0.65 against 0.5 on these 200), and two choices a
    # question keep it cheap; the damaged adapter falls to about chance, 3 standard errors down
    broken = bench_cli(str(damaged_run), "--tasks", "piqa", "--limit", "200", "--gate", "5")
    assert broken.exit_code == 1, broken.output[-2000:]
    assert "gate: piqa" in broken.output
    damaged = json.loads((damaged_run / "bench.json").read_text())["scores"]["piqa"]
    assert damaged["base"] > 0.6
    assert damaged["tuned"] < damaged["base"] - 0.05 and damaged["beyond_noise"]


def test_eval_bench_scores_a_run_before_and_after_and_compare_shows_it(tmp_path):
    overrides = sft_overrides(
        tmp_path, "lora", "train.epochs=1", "eval.bench=[arc_easy,piqa]", "eval.bench_limit=8"
    )
    summary = run(load_config(None, overrides))
    run_dir = tmp_path / "run"
    scores = json.loads((run_dir / "bench.json").read_text())["scores"]
    assert set(scores) == {"arc_easy", "piqa"} and scores["arc_easy"]["n"] == 8
    assert summary["bench.piqa"] == scores["piqa"]["tuned"]
    assert summary["bench.piqa.change"] == scores["piqa"]["difference"]
    assert "## Standard benchmarks" in (run_dir / "report.md").read_text()
    assert (run_dir / "plots" / "bench.png").is_file()
    _, table = write_leaderboard(board_rows([("lora", [run_dir])]), tmp_path)
    header = table.splitlines()[0]
    assert "arc_easy" in header and "piqa change" in header
    rows = {r["method"]: r for r in json.loads((tmp_path / "leaderboard.json").read_text())}
    assert rows["before"]["bench.piqa"] == pytest.approx(scores["piqa"]["base"])  # the start's
    assert (tmp_path / "plots" / "benchmarks.png").is_file()


def test_chat_asks_every_question_through_the_models_chat_template():
    settings = BenchSettings(["arc_easy"], limit=3, chat=True)
    target = load_target("smollm2-135m")
    chat = score(target.model, target.tokenizer, settings)["arc_easy"]
    plain = score(target.model, target.tokenizer, replace(settings, chat=False))["arc_easy"]
    assert chat["n"] == plain["n"] == 3
    assert chat["example"].startswith("<|im_start|>")
    assert plain["example"].startswith("Question:") and "<|im_start|>" not in plain["example"]


@pytest.mark.parametrize(
    "setting,message",
    [
        ("eval.bench=[arc_esy]", "eval.bench: unknown benchmark arc_esy"),
        ("task.name=classify", "eval.bench: task 'classify' trains a classifier"),
    ],
)
def test_a_bad_eval_bench_stops_the_run_before_anything_trains(tmp_path, setting, message):
    overrides = sft_overrides(tmp_path, "lora", "eval.bench=[arc_easy]", setting)
    if setting.startswith("task.name"):
        overrides = [o for o in overrides if not o.startswith("task.template")]
    with pytest.raises(TunelabError, match=re.escape(message)):
        run(load_config(None, overrides))
    assert not (tmp_path / "run" / "checkpoints").exists()
