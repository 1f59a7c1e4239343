"""compare's search on validation: the test split never read, the pruner, a bad search or
experiment is one line naming its field (the interrupted sweep: test_compare_verdicts.py)."""

import json
import re

import optuna
import pytest
from tests.conftest import write_csv
from tests.helpers import assert_one_line_error, run_cli, train_tiny, write_base, write_experiment
from tests.lm_helpers import sft_overrides
from tests.test_compare_verdicts import LR_RANGE

from tunelab.compare.search import storage_url
from tunelab.errors import DataError, TunelabError
from tunelab.pipeline import load_config, run


def poisoned_test_file(tmp_path):
    """A test file whose reading fails the run (a label training never saw)."""
    return write_csv(tmp_path / "test.csv", [("a good film", "pos"), ("odd row", "unseen")])


def test_a_run_scored_on_validation_never_opens_the_test_file(model_dirs, toy_csv, tmp_path):
    test = poisoned_test_file(tmp_path)
    extra = [f"data.test_path={test}", "eval.split=val", "train.epochs=1"]
    summary = train_tiny(model_dirs["stories260K"], toy_csv, tmp_path / "val", "head", extra)
    assert summary["scored_on"] == "val" and summary["score_name"] == "val_accuracy"
    with pytest.raises(DataError, match="unseen"):  # read, it would have stopped the run
        train_tiny(model_dirs["stories260K"], toy_csv, tmp_path / "test", "head", extra[:1])


def test_an_sft_run_scored_on_validation_never_opens_the_test_files(tmp_path):
    """sft could not be searched (issue 34: LoRA against full for tool calling, each tuned on
    validation): it read and scored its test files in every run."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q"}\n')  # no answer: reading it stops the run
    extra = [f"data.test_path={bad}", "eval.test_sets={extra: " + str(bad) + "}"]
    extra += ["train.epochs=1", "eval.generate_limit=2", "eval.bench=[piqa]"]
    summary = run(load_config(None, sft_overrides(tmp_path, "lora", *extra, "eval.split=val")))
    assert summary["scored_on"] == "val" and summary["score_name"].startswith("val_")
    data = json.loads((tmp_path / "run" / "data_summary.json").read_text())
    assert "test" not in data["splits"] and data["splits"]["val"]["rows"] > 0
    after = json.loads((tmp_path / "run" / "eval_after.json").read_text())
    assert list(after["sets"]) == ["val"]
    assert not (tmp_path / "run" / "bench.json").exists()  # benchmarks are test sets too
    with pytest.raises(DataError, match="bad.jsonl"):  # read, it would have stopped the run
        run(
            load_config(
                None, sft_overrides(tmp_path, "lora", *extra, f"output.dir={tmp_path / 'x'}")
            )
        )


def test_the_search_never_reads_the_test_split(model_dirs, toy_csv, tmp_path):
    """The test file is poisoned: every trial finishes, and only the final run trips on it."""
    write_base(
        tmp_path, model_dirs["stories260K"], toy_csv, test_path=str(poisoned_test_file(tmp_path))
    )
    experiment = write_experiment(
        tmp_path,
        [{"name": "head", "overrides": ["method.name=head", "train.epochs=1"]}],
        search={"trials": 1, "prune": False, "train.lr": LR_RANGE},
    )
    code, output = run_cli("compare", experiment)
    assert_one_line_error(code, output.splitlines()[-1], "1 variant(s) failed: head")
    record = json.loads((tmp_path / "cmp" / "head" / "search.json").read_text())
    assert [t["state"] for t in record["trials"]] == ["complete"]


def test_a_bad_search_is_one_line_naming_the_field(tmp_path, model_dirs, toy_csv):
    write_base(tmp_path, model_dirs["stories260K"], toy_csv)
    variants = [{"name": "head", "overrides": ["method.name=head"]}]
    experiment = write_experiment(tmp_path, variants, search={"train.lr": {"log": [0, 1]}})
    code, output = run_cli("compare", experiment)
    assert_one_line_error(code, output, "search.space.train.lr", "above 0")
    code, output = run_cli("compare", experiment, "--seeds", "1,1")
    assert_one_line_error(code, output, "--seeds", "distinct")


def test_a_trial_scored_the_other_way_round_stops_the_search_in_one_line(tmp_path):
    """sft's headline falls back to perplexity when no answer is generated: a study maximising
    call accuracy or ROUGE-L would rank the trials backwards."""
    from tunelab.compare.search import trial_value

    summary = {"scored_on": "val", "score": 3.2, "higher_is_better": False}
    (tmp_path / "train_summary.json").write_text(
        json.dumps(summary | {"score_name": "val_perplexity"})
    )
    assert trial_value(tmp_path, higher_is_better=False) == 3.2
    with pytest.raises(TunelabError, match="val_perplexity; for sft, set eval.generate_limit"):
        trial_value(tmp_path, higher_is_better=True)


def test_the_pruner_stops_a_trial_whose_curve_falls_behind(tmp_path, monkeypatch):
    """Inside a trial's run: each epoch's validation figure reaches the study; one below the
    median of the finished trials at that epoch stops the run and marks it pruned."""
    from tunelab.compare.search import trial_value
    from tunelab.train.trial import PRUNED_FILE, report_epoch, trial_env

    storage = storage_url(tmp_path)
    study = optuna.create_study(study_name="head", storage=storage, direction="maximize")
    for value in (0.9, 0.8):  # two finished curves: the pruner's median is 0.85 at epoch 1
        done = study.ask()
        done.report(value, 1)
        study.tell(done, value)
    behind, ahead = study.ask(), study.ask()
    for trial, value, pruned in ((ahead, 0.93, False), (behind, 0.55, True)):
        run_dir = tmp_path / f"trial-{trial.number}"
        run_dir.mkdir()
        for key, text in trial_env(storage, "head", trial._trial_id, "val_accuracy").items():
            monkeypatch.setenv(key, text)
        assert report_epoch({"val_accuracy": value}, 1, run_dir) is pruned
        assert (run_dir / PRUNED_FILE).is_file() is pruned
    with pytest.raises(optuna.TrialPruned):
        trial_value(tmp_path / f"trial-{behind.number}", higher_is_better=True)
    monkeypatch.delenv("TUNELAB_TRIAL")
    assert report_epoch({"val_accuracy": 0.1}, 1, tmp_path) is False  # an ordinary run


def shipped_experiments() -> list:
    from pathlib import Path

    configs = Path(__file__).resolve().parents[1] / "configs"
    return sorted(p for p in configs.glob("*.yaml") if "variants:" in p.read_text())


@pytest.mark.parametrize("path", shipped_experiments(), ids=lambda p: p.stem)
def test_every_shipped_experiment_plans_before_anything_runs(path, monkeypatch):
    """Each variant's overrides validate and each search fits its method: a typo in a shipped
    experiment fails here, not an hour into a sweep."""
    from tunelab.compare import load_experiment
    from tunelab.compare import plan as plan_variants

    monkeypatch.chdir(path.parents[1])  # configs name their data relative to the checkout
    experiment = load_experiment(path)
    plans = plan_variants(path, experiment, experiment.budget.overrides())
    assert [p.variant.name for p in plans] == [v.name for v in experiment.variants]
    for item in plans:
        assert item.search is None or (item.trains and item.search.space)


@pytest.mark.parametrize(
    "variant,message",
    [
        ({"name": ".."}, "names no folder of its own"),
        ({"name": "."}, "names no folder of its own"),
        ({"name": "lora", "overrides": ["method.name"]}, "is not key=value"),
        ({"name": "lora", "overrides": ["=lora"]}, "is not key=value"),
    ],
)
def test_a_variant_that_would_write_outside_its_folder_is_refused(tmp_path, variant, message):
    """Issue 36: a variant named `..` trained into the experiment's parent folder."""
    from tunelab.compare import load_experiment

    path = tmp_path / "exp.yaml"
    path.write_text(json.dumps({"base": "base.yaml", "output_dir": "out", "variants": [variant]}))
    with pytest.raises(TunelabError, match=re.escape(message)):
        load_experiment(path)
    assert not (tmp_path / "out").exists()


def test_an_output_dir_that_is_a_file_is_one_line(tmp_path, model_dirs, toy_csv):
    write_base(tmp_path, model_dirs["stories260K"], toy_csv)
    (tmp_path / "cmp").write_text("my notes")  # where the experiment would write
    experiment = write_experiment(tmp_path, [{"name": "head", "overrides": ["method.name=head"]}])
    code, output = run_cli("compare", experiment)
    assert_one_line_error(code, output, "output_dir", "cannot use", "File exists")
    assert (tmp_path / "cmp").read_text() == "my notes"


def test_a_damaged_record_of_what_ran_is_one_line(tmp_path, model_dirs, toy_csv):
    """Issue 36: experiment_ran.yaml cut by a kill (now written whole) or edited by hand was a
    traceback, or taken for an experiment with no settings."""
    from tunelab.compare import check_unchanged

    for damage in (b"", b"\xff\xfe\x00", b"- a list\n"):
        (tmp_path / "ran.yaml").write_bytes(damage)
        with pytest.raises(TunelabError, match="ran.yaml: damaged"):
            check_unchanged(tmp_path / "ran.yaml", {"variants": []})
    write_base(tmp_path, model_dirs["stories260K"], toy_csv)
    experiment = write_experiment(tmp_path, [{"name": "head", "overrides": ["method.name=head"]}])
    (tmp_path / "cmp").mkdir()
    (tmp_path / "cmp" / "experiment_ran.yaml").write_text("base: [")
    code, output = run_cli("compare", experiment)
    assert_one_line_error(code, output, "experiment_ran.yaml: damaged")
    assert not (tmp_path / "cmp" / "head").exists()


def test_the_first_trials_cover_every_choice_and_each_part_of_a_range():
    """The spread-out first proposals: as many trials as choices try each choice once, and four
    trials of an int range put one in each quarter of it."""
    from tunelab.compare.experiment import Search
    from tunelab.compare.search import spread_point

    search = Search.model_validate(
        {"trials": 4, "method.r": [4, 8, 16, 32], "train.epochs": {"int": [1, 8]}}
    )
    points = [spread_point(search, seed=7, index=i) for i in range(4)]
    assert sorted(p["method.r"] for p in points) == [4, 8, 16, 32]
    assert sorted((p["train.epochs"] - 1) // 2 for p in points) == [0, 1, 2, 3]
