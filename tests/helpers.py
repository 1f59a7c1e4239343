"""Run tunelab on tiny models the way a user does, through the config and the pipeline."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.pipeline import load_config, run

FAST_TRAIN = [
    "train.epochs=3",
    "train.batch_size=8",
    "train.lr=0.005",
    "train.log_every=1",
    "train.weight_decay=0.0",
    "eval.examples=4",
]


def train_tiny(
    model_dir: str,
    data: Path,
    run_dir: Path,
    method: str = "head",
    extra: list[str] = (),
    resume: bool = False,
) -> dict:
    overrides = [
        f"model.name={model_dir}",
        f"data.path={data}",
        f"method.name={method}",
        f"output.dir={run_dir}",
        "data.max_length=32",
        *FAST_TRAIN,
        *extra,
    ]
    return run(load_config(None, overrides), resume=resume)


def trained_run_dir(tmp_path_factory, model_dir: str, data: Path, method: str, *extra: str):
    """A tiny run trained once for a test module, in a fresh folder."""
    run_dir = tmp_path_factory.mktemp(method) / "run"
    train_tiny(model_dir, data, run_dir, method, list(extra))
    return run_dir


def run_cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output  # click mixes stderr into output


def assert_one_line_error(code: int, output: str, *expected: str):
    assert code == 2, output
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    assert "Traceback" not in output
    for part in expected:
        assert part in lines[0], (part, lines[0])


# an experiment for `tunelab compare`: base.yaml and exp.yaml in tmp_path, runs in tmp_path/cmp
def write_base(tmp_path, model_dir, data, **data_fields) -> None:
    config = {"model": {"name": model_dir}, "data": {"path": str(data), "max_length": 32}}
    config["data"].update(data_fields)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(config))


def write_experiment(tmp_path, variants, **fields):
    experiment = tmp_path / "exp.yaml"
    spec = {
        "base": "base.yaml",
        "output_dir": str(tmp_path / "cmp"),
        "overrides": FAST_TRAIN,
        "variants": variants,
        **fields,
    }
    experiment.write_text(yaml.safe_dump(spec))
    return experiment


def saved_weights(run_dir: Path) -> dict:
    """The finished run's saved model or adapter (not its checkpoints)."""
    [path] = [p for p in run_dir.glob("*/*.safetensors") if p.parent.name != "checkpoints"]
    return load_file(path)


def assert_same_run(straight: Path, resumed: Path) -> None:
    a, b = saved_weights(straight), saved_weights(resumed)
    assert a.keys() == b.keys()
    for name, tensor in a.items():
        np.testing.assert_allclose(tensor.numpy(), b[name].numpy(), atol=1e-6, err_msg=name)
    epochs = [json.loads(x) for x in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs if e["event"] == "eval"] == [1, 2, 3]
    expected = json.loads((straight / "eval_after.json").read_text())
    got = json.loads((resumed / "eval_after.json").read_text())
    assert got["accuracy"] == expected["accuracy"]
    assert got["loss"] == pytest.approx(expected["loss"], abs=1e-5)
