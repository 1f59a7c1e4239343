"""A run's guards around its checkpoints: a changed config or a finished run on --resume, the
before-evaluation reused, a NaN loss, impossible settings and Ctrl-C."""

import re
import shutil

import pytest
from tests.helpers import FAST_TRAIN, assert_one_line_error, run_cli, train_tiny
from tests.test_checkpoints import EXTRA, Killed

from tunelab.train import loop

PROGRESS_LINE = re.compile(r"^.+: \d+/\d+ \(\d+%\), \d+m\d\ds")  # progress.plain_line's


def without_progress_bars(output: str) -> str:
    """The output less rich's bars (a terminal) and their plain lines (a pipe)."""
    kept = [x for x in output.splitlines() if "━" not in x and not PROGRESS_LINE.match(x)]
    return "\n".join(kept)


def tiny_cli_args(model_dirs, toy_csv, run_dir, *extra):
    return ["train", f"model.name={model_dirs['llama']}", f"data.path={toy_csv}",
            "method.name=freeze", f"output.dir={run_dir}", "data.max_length=32", *FAST_TRAIN,
            *extra]  # fmt: skip


def test_resume_with_a_changed_config_is_refused_before_touching_the_run(
    model_dirs,
    toy_csv,
    straight_run,
    tmp_path,
):
    run_dir = tmp_path / "run"
    shutil.copytree(straight_run, run_dir)
    saved = (run_dir / "config.yaml").read_text()
    code, output = run_cli(*tiny_cli_args(model_dirs, toy_csv, run_dir, "train.lr=0.001"),
                           "--resume")  # fmt: skip
    assert_one_line_error(code, output, "train.lr", "0.005", "0.001", "--overwrite")
    assert (run_dir / "config.yaml").read_text() == saved


def test_resume_of_a_finished_run_trains_nothing(model_dirs, toy_csv, straight_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(straight_run, run_dir)
    weights = run_dir / "model" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    code, output = run_cli(*tiny_cli_args(model_dirs, toy_csv, run_dir), "--resume")
    assert code == 0, output
    assert "finished before" in output
    assert weights.stat().st_mtime_ns == stamp
    # fewer epochs than it trained: the 3-epoch weights would have been kept and called 2
    code, output = run_cli(*tiny_cli_args(model_dirs, toy_csv, run_dir, "train.epochs=2"),
                           "--resume")  # fmt: skip
    assert_one_line_error(code, output, "has trained 3 epochs", "train.epochs=2", "--overwrite")
    assert weights.stat().st_mtime_ns == stamp
    code, output = run_cli(*tiny_cli_args(model_dirs, toy_csv, run_dir), "--overwrite")
    assert code == 0 and weights.stat().st_mtime_ns != stamp, output


def test_a_resume_reuses_the_before_evaluation(model_dirs, toy_csv, tmp_path, monkeypatch):
    from tunelab.tasks.classify import ClassifyTask

    run_dir, calls = tmp_path / "run", []
    original_checkpoint, original_evaluate = loop.Trainer.checkpoint, ClassifyTask.evaluate

    def stop_after_epoch_1(self, state, scheduler, improved):
        original_checkpoint(self, state, scheduler, improved)
        raise Killed

    def counted(self, model):
        calls.append(1)
        return original_evaluate(self, model)

    monkeypatch.setattr(ClassifyTask, "evaluate", counted)
    with monkeypatch.context() as patch:
        patch.setattr(loop.Trainer, "checkpoint", stop_after_epoch_1)
        with pytest.raises(Killed):
            train_tiny(model_dirs["llama"], toy_csv, run_dir, "freeze", EXTRA)
    assert len(calls) == 1 and (run_dir / "eval_before.json").is_file()
    train_tiny(model_dirs["llama"], toy_csv, run_dir, "freeze", EXTRA, resume=True)
    assert len(calls) == 2  # only the after-evaluation ran again


def test_a_nan_loss_stops_the_run_with_one_line(model_dirs, toy_csv, tmp_path, monkeypatch):
    original, batches = loop.Trainer.loss_and_backward, []

    def diverging(self, batch):  # what a too-high learning rate does a few steps in
        loss, correct = original(self, batch)
        batches.append(1)
        return (loss * float("nan") if len(batches) >= 3 else loss), correct

    monkeypatch.setattr(loop.Trainer, "loss_and_backward", diverging)
    code, output = run_cli(*tiny_cli_args(model_dirs, toy_csv, tmp_path / "run"))
    output = without_progress_bars(output)
    assert_one_line_error(code, output, "epoch 1, step 3", "training loss is nan", "train.lr")
    assert not (tmp_path / "run" / "run_info.json").exists()


@pytest.mark.parametrize(
    "setting, field",
    [("train.lr=1e6", "train.lr"), ("train.lr=.inf", "train.lr"),
     ("train.max_grad_norm=-1", "train.max_grad_norm"), ("train.batch_size=0", "train.batch_size")],
)  # fmt: skip
def test_impossible_training_settings_are_config_errors(model_dirs, toy_csv, tmp_path, setting,
                                                        field):  # fmt: skip
    code, output = run_cli(*tiny_cli_args(model_dirs, toy_csv, tmp_path / "run", setting))
    assert_one_line_error(code, output, field)
    assert not (tmp_path / "run").exists()


def test_ctrl_c_names_the_checkpoint_and_the_resume_command(
    model_dirs, toy_csv, tmp_path, monkeypatch
):
    original = loop.Trainer.checkpoint

    def interrupt_after_epoch_1(self, state, scheduler, improved):
        original(self, state, scheduler, improved)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop.Trainer, "checkpoint", interrupt_after_epoch_1)
    code, output = run_cli(*tiny_cli_args(model_dirs, toy_csv, tmp_path / "run"))
    assert code == 130, output
    lines = [x for x in without_progress_bars(output).splitlines() if x.strip()]
    assert len(lines) == 1, lines
    line = lines[0]
    assert "interrupted" in line and "epoch 1" in line and "--resume" in line


def snapshot(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("target", ["data folder", "model folder", "working folder"])
def test_overwrite_deletes_nothing_that_is_not_a_run_directory(
    model_dirs, toy_csv, tmp_path, monkeypatch, target
):
    """Issue 36: `--overwrite` with output.dir naming the data, the base model or `.` emptied
    that folder before anything was checked."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(toy_csv, data / "toy.csv")
    model = tmp_path / "model"
    shutil.copytree(model_dirs["llama"], model)
    monkeypatch.chdir(data if target == "working folder" else tmp_path)
    output = {"data folder": data, "model folder": model, "working folder": "."}[target]
    before = {"data": snapshot(data), "model": snapshot(model)}
    args = tiny_cli_args({"llama": model}, data / "toy.csv", output)
    code, printed = run_cli(*args, "--overwrite")
    assert_one_line_error(
        code,
        printed,
        "output.dir",
        "nothing was deleted" if target != "working folder" else "will not",
    )
    assert {"data": snapshot(data), "model": snapshot(model)} == before


def test_overwrite_replaces_a_run_directory_and_refuses_a_link_to_one(
    model_dirs, toy_csv, straight_run, tmp_path
):
    run_dir = tmp_path / "run"
    shutil.copytree(straight_run, run_dir)
    link = tmp_path / "link"
    link.symlink_to(run_dir)
    code, printed = run_cli(*tiny_cli_args(model_dirs, toy_csv, link), "--overwrite")
    assert_one_line_error(code, printed, "symbolic link")
    assert snapshot(run_dir) == snapshot(straight_run)
    (run_dir / "stale.txt").write_text("from an earlier run")
    code, printed = run_cli(*tiny_cli_args(model_dirs, toy_csv, run_dir), "--overwrite")
    assert code == 0, printed
    assert not (run_dir / "stale.txt").exists() and (run_dir / "run_info.json").is_file()


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["data.text_field=label"], "would read the label it is asked for"),
        (["train.grad_accum=99"], "no optimizer step would run"),
        (["train.precision=fp16"], "needs a CUDA GPU"),
        (["method.k=99"], "method.k=99: the model has"),
        (["method.name=prompt_tuning", "method.num_virtual_tokens=100000"], "context is"),
    ],
)
def test_settings_that_would_make_the_scores_meaningless_are_one_line(
    model_dirs, toy_csv, tmp_path, extra, expected
):
    """Issue 36: test accuracy 1.0 from the label read as text, the training file scored as the
    test one, a run that trained nothing ("after" = "before"), fp16 on a CPU: all accepted."""
    if "fp16" in extra[0]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("fp16 is a GPU's precision")
    extra = [e.format(data=toy_csv) for e in extra]
    code, output = run_cli(*tiny_cli_args(model_dirs, toy_csv, tmp_path / "run", *extra))
    assert_one_line_error(code, output, expected)


def test_a_config_declaring_fewer_blocks_than_the_weights_is_one_line(toy_csv, tmp_path):
    """Issue 36: a config.json whose layer count was smaller than the weights' trained a smaller
    model without a word."""
    import json

    from tests.conftest import ASSETS

    model = tmp_path / "model"
    shutil.copytree(ASSETS / "stories260K", model)
    config = json.loads((model / "config.json").read_text())
    config["num_hidden_layers"] -= 1
    (model / "config.json").write_text(json.dumps(config))
    code, output = run_cli("train", f"model.name={model}", f"data.path={toy_csv}",
                           f"output.dir={tmp_path / 'run'}", *FAST_TRAIN)  # fmt: skip
    assert_one_line_error(code, output, "config.json does not declare", "layers.")


def test_resume_after_the_data_file_changed_is_refused(model_dirs, toy_csv, tmp_path):
    """Issue 36: --resume continued on a changed data file without a word."""
    data = tmp_path / "data.csv"
    shutil.copy(toy_csv, data)
    run_dir = tmp_path / "run"
    code, output = run_cli(*tiny_cli_args(model_dirs, data, run_dir, "train.epochs=1"))
    assert code == 0, output
    assert str(data) in (run_dir / "data_files.json").read_text()
    with data.open("a") as handle:
        handle.write("a new row that was not there,pos\n")
    code, output = run_cli(*tiny_cli_args(model_dirs, data, run_dir, "train.epochs=2"), "--resume")
    assert_one_line_error(code, output, "--resume", str(data), "changed since the run started")


def test_a_folder_being_trained_is_not_trained_by_a_second_process(model_dirs, toy_csv, tmp_path):
    """A second `train` of a folder in use (the UI's resume of a running run, a compare rerun
    while a killed sweep's trial lived on) wrote into it beside the first."""
    from tunelab.files import held_alone

    run_dir = tmp_path / "run"
    with held_alone(run_dir, "being trained"):  # as the first process holds it
        code, output = run_cli(*tiny_cli_args(model_dirs, toy_csv, run_dir), "--resume")
    assert_one_line_error(code, output, f"{run_dir}: being trained by process")
    assert not run_dir.exists()
    with held_alone(run_dir, "being trained"):  # the lock went with its holder
        pass
