"""compare's verdicts: seeds with intervals, a search on validation that never reads the test
split, an interrupted sweep that resumes without re-running a finished trial, equal budgets."""

import json
import os
import shutil

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from tests.helpers import (
    assert_one_line_error,
    run_cli,
    train_tiny,
    write_base,
    write_experiment,
)
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.compare.search import storage_url

LR_RANGE = {"log": [1.0e-3, 5.0e-2]}


def summary_of(run_dir):
    return json.loads((run_dir / "train_summary.json").read_text())


SEEDED_VARIANTS = [
    {"name": "zero_shot", "overrides": ["method.name=zero_shot", "method.description=Good?"]},
    {"name": "head", "overrides": ["method.name=head"]},
]


def seeded_experiment(tmp_path, trials: int = 2, variants=SEEDED_VARIANTS):
    return write_experiment(
        tmp_path,
        variants,
        seeds=[1, 2],
        budget={"tokens": 1500},
        search={"trials": trials, "train.lr": LR_RANGE},
    )


@pytest.fixture(scope="module")
def seeded(model_dirs, toy_csv, tmp_path_factory):
    """A trained variant and zero-shot, two seeds, head's learning rate searched, one token
    budget for all (each run is a process of its own: ~15 s on 2 cores, so the fewest that show
    trials, seeds and a verdict)."""
    tmp_path = tmp_path_factory.mktemp("seeded")
    write_base(tmp_path, model_dirs["stories260K"], toy_csv)
    result = CliRunner().invoke(app, ["compare", str(seeded_experiment(tmp_path))])
    assert result.exit_code == 0, result.output
    return tmp_path / "cmp", result.output


def test_every_trial_is_scored_on_validation_and_the_choice_is_what_the_seeds_train(seeded):
    out, _ = seeded
    for name, searched in (("head", {"train.lr"}),):
        record = json.loads((out / name / "search.json").read_text())
        assert len(record["trials"]) == 2 and set(record["chosen"]) == searched
        val_rows = None
        for trial in record["trials"]:
            run_dir = out / name / "search" / f"trial-{trial['number']}"
            summary = summary_of(run_dir)
            assert summary["scored_on"] == "val"
            data = json.loads((run_dir / "data_summary.json").read_text())
            val_rows = data["splits"]["val"]["rows"]
            assert "test" not in data["splits"]  # never encoded, never scored
            assert json.loads((run_dir / "eval_after.json").read_text())["n"] == val_rows
            assert not (run_dir / "adapter").exists() and not (run_dir / "model").exists()
        for seed in (1, 2):
            config = yaml.safe_load((out / name / f"seed-{seed}" / "config.yaml").read_text())
            assert config["train"]["lr"] == pytest.approx(record["chosen"]["train.lr"])
            assert config["train"]["seed"] == seed and config["eval"]["split"] == "test"
        assert val_rows > 0


def test_two_trials_try_one_rate_in_each_half_of_the_range(seeded):
    """With few trials the first proposals are spread: random draws may land side by side (a
    tools compare drew 4.1e-4 and 4.4e-4 of [1e-4, 3e-3]) and the search then tries one rate."""
    trials = json.loads((seeded[0] / "head" / "search.json").read_text())["trials"]
    rates = sorted(t["params"]["train.lr"] for t in trials)
    low, high = LR_RANGE["log"]
    middle = (low * high) ** 0.5  # the middle of a log range
    assert len(rates) == 2
    assert low <= rates[0] < middle <= rates[1] <= high


def test_the_base_is_evaluated_once_for_the_trials_that_start_alike(seeded):
    """head's trials start from the same seeded head (another rate only): one evaluation of
    the start, kept; each seed draws another head, whose start is its own."""
    out, _ = seeded
    trials = [out / "head" / "search" / f"trial-{n}" / "eval_before.json" for n in (0, 1)]
    assert trials[0].read_text() == trials[1].read_text()
    assert len(list((out / "eval_before").glob("classify-*.json"))) == 3  # trials, seed 1, 2


def test_seeds_vary_training_not_the_split(seeded):
    out, _ = seeded
    first, second = out / "head" / "seed-1", out / "head" / "seed-2"
    assert (first / "data_summary.json").read_text() == (second / "data_summary.json").read_text()
    after = [json.loads((d / "eval_after.json").read_text()) for d in (first, second)]
    assert len(after[0]["per_example"]["accuracy"]) == len(after[1]["per_example"]["accuracy"])
    curves = [(d / "metrics.jsonl").read_text() for d in (first, second)]
    assert curves[0] != curves[1]  # another initialisation and order


def test_the_leaderboard_has_intervals_verdicts_and_the_start(seeded):
    out, output = seeded
    rows = {r["method"]: r for r in json.loads((out / "leaderboard.json").read_text())}
    assert set(rows) == {"zero_shot", "head", "before"}
    assert rows["head"]["seeds"] == 2 and rows["head"]["score_ci"] is not None
    assert len(rows["head"]["seed_scores"]) == 2
    # the task's other figures (and a benchmark's, where eval.bench scores one) carry theirs too
    assert rows["head"]["intervals"]["macro_f1"] is not None
    assert rows["zero_shot"]["seeds"] == 1  # prompting trains nothing a seed changes
    verdicts = [r["verdict"] for r in rows.values()]
    assert verdicts.count("best") == 1
    assert all(v == "best" or v.startswith(("tied (p=", "worse (p=")) for v in verdicts)
    board = (out / "leaderboard.md").read_text()
    assert "Settings chosen on validation" in board
    head_line = next(line for line in board.splitlines() if line.startswith("| head |"))
    assert head_line.count(" ± ") == 2  # the score's and macro-F1's
    assert "trained tokens" in board and "![pareto_time](plots/pareto_time.png)" in board
    assert "s of wall time this call" in output


def test_the_budget_holds_for_every_run(seeded):
    out, _ = seeded
    runs = [d for d in out.glob("*/seed-*")] + [d for d in out.glob("*/search/trial-*")]
    trained = [summary_of(d) for d in runs if summary_of(d)["parameters"]["trainable"] > 0]
    assert len(trained) == 4  # 2 trials + 2 seeds of head
    assert all(0 < s["trained_tokens"] <= 1500 for s in trained)


def test_a_variant_turns_the_shared_search_off_and_prompting_is_never_searched(
    model_dirs, toy_csv, tmp_path
):
    from tunelab.compare import load_experiment, plan

    write_base(tmp_path, model_dirs["stories260K"], toy_csv)
    variants = [
        {"name": "zero_shot", "overrides": ["method.name=zero_shot", "method.description=Good?"]},
        {"name": "head", "overrides": ["method.name=head"]},
        {"name": "lora", "overrides": ["method.name=lora"], "search": {"trials": 0}},
    ]
    path = write_experiment(tmp_path, variants, search={"trials": 2, "train.lr": LR_RANGE})
    experiment = load_experiment(path)
    searches = {p.variant.name: p.search for p in plan(path, experiment, [])}
    assert searches["zero_shot"] is None and searches["lora"] is None
    assert searches["head"].trials == 2 and set(searches["head"].space) == {"train.lr"}


def test_a_token_budget_stops_training_before_it_is_passed(model_dirs, toy_csv, tmp_path):
    free = train_tiny(model_dirs["stories260K"], toy_csv, tmp_path / "free", "lora")
    capped = train_tiny(
        model_dirs["stories260K"], toy_csv, tmp_path / "capped", "lora", ["train.max_tokens=700"]
    )
    assert free["trained_tokens"] > 2000
    assert 500 < capped["trained_tokens"] <= 700  # one batch short of the budget at most


def test_an_interrupted_sweep_resumes_without_rerunning_finished_trials(seeded, tmp_path):
    """On a copy of the seeded experiment, a third trial is killed: Optuna's record says running,
    its run never finished. The rerun runs that trial's settings again and nothing else of the
    search (the copy keeps the trials' files and their times)."""
    shutil.copytree(seeded[0].parent, tmp_path, dirs_exist_ok=True)
    out = tmp_path / "cmp"
    before = json.loads((out / "head" / "search.json").read_text())["trials"]
    first = out / "head" / "search" / "trial-0" / "train_summary.json"
    stamp = os.stat(first).st_mtime_ns
    study = optuna.load_study(study_name="head", storage=storage_url(out))
    study.enqueue_trial({"train.lr": LR_RANGE["log"][0]})  # the slowest rate: not chosen anew
    killed = study.ask({"train.lr": FloatDistribution(*LR_RANGE["log"], log=True)})
    experiment = seeded_experiment(tmp_path, trials=3)
    result = CliRunner().invoke(app, ["compare", str(experiment)])
    assert result.exit_code == 0, result.output
    assert "2 of 3 trials finished before; not run again" in result.output
    assert f"trial {killed.number} was interrupted; its settings run again" in result.output
    assert os.stat(first).st_mtime_ns == stamp
    record = json.loads((out / "head" / "search.json").read_text())
    states = {t["number"]: t["state"] for t in record["trials"]}
    assert states == {**{t["number"]: t["state"] for t in before}, 2: "fail", 3: "complete"}
    rerun = next(t for t in record["trials"] if t["number"] == 3)
    assert rerun["params"] == killed.params
    # another budget in the same folder would put its runs beside the finished ones: refused
    code, output = run_cli("compare", experiment, "--max-tokens", "2000")
    assert_one_line_error(code, output, "budget_overrides changed", "use another output_dir")
    changed = [
        SEEDED_VARIANTS[0],
        {"name": "head", "overrides": ["method.name=head", "train.epochs=2"]},
    ]
    code, output = run_cli("compare", seeded_experiment(tmp_path, 3, changed))
    assert_one_line_error(code, output, "variant head changed")
    assert os.stat(first).st_mtime_ns == stamp
