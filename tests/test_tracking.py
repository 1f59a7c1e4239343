"""train.report_to: TensorBoard and MLflow get the same series as metrics.jsonl, and the resolved
config as parameters, written offline under the run directory."""

import json
from pathlib import Path

import pytest
from tests.helpers import assert_one_line_error, run_cli, train_tiny


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    events = EventMultiplexer().AddRunsFromDirectory(str(folder)).Reload()
    (run,) = [name for name, tags in events.Runs().items() if tags["scalars"]]
    return {
        tag: [(e.step, e.value) for e in events.Scalars(run, tag)]
        for tag in events.Runs()[run]["scalars"]
    }


def train_losses(run_dir: Path) -> list[tuple[int, float]]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(x["step"], x["loss"]) for x in lines if x["event"] == "train"]


def mlflow_run(run_dir: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient((run_dir / "tracking" / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == run_dir.name]
    (found,) = client.search_runs([experiment.experiment_id])
    return client, found


@pytest.fixture(scope="module")
def tracked_run(model_dirs, toy_csv, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tracked") / "run"
    train_tiny(model_dirs["llama"], toy_csv, run_dir, "head",
               ["train.report_to=[tensorboard,mlflow]", "train.epochs=2"])  # fmt: skip
    return run_dir


def test_tensorboard_holds_the_loss_series_of_metrics_jsonl(tracked_run):
    expected = train_losses(tracked_run)
    scalars = tensorboard_scalars(tracked_run / "tracking" / "tensorboard")
    assert len(expected) >= 6
    assert [step for step, _ in scalars["train/loss"]] == [step for step, _ in expected]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([v for _, v in expected])
    assert "eval/val_loss" in scalars and "eval/val_accuracy" in scalars


def test_mlflow_holds_the_loss_series_and_the_config(tracked_run):
    client, found = mlflow_run(tracked_run)
    history = client.get_metric_history(found.info.run_id, "train/loss")
    expected = train_losses(tracked_run)
    assert [m.step for m in history] == [step for step, _ in expected]
    assert [m.value for m in history] == pytest.approx([v for _, v in expected])
    assert found.data.params["train.lr"] == "0.005" and found.data.params["method.name"] == "head"
    assert found.info.status == "FINISHED"


def test_a_tracker_that_is_not_installed_is_a_one_line_error(tmp_path):
    code, output = run_cli("train", f"output.dir={tmp_path / 'r'}", "train.report_to=[wandb]")
    assert_one_line_error(code, output, "train.report_to", "wandb is not installed")
