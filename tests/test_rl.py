"""grpo and rloo (TRL's trainers, rewards as Python functions) and orpo on the real stories260K
Llama. The toy verifiable reward: 1 when a completion uses the word "the" (about one sampled
completion in six at the start)."""

import json

import pytest
from tests.helpers import assert_one_line_error, run_cli
from tests.lm_helpers import QA, STORIES, write_jsonl
from tests.test_preference import CONTRACT, assert_base_weights_untouched, overrides, pairs_file  # noqa: F401
from tests.test_resume_trainers import Killed, kill_after_save
from transformers import AutoTokenizer

from tunelab.errors import DataError
from tunelab.pipeline import load_config, run
from tunelab.tasks.rl.rewards import RewardSpec, build_rewards, checked

TOY_REWARDS = """
def uses_the(prompts, completions, **fields):
    return [float(" the " in f" {c.lower()} ") for c in completions]


def breaks_on_fish(prompts, completions, **fields):
    return [1 / ("fish" not in q) for q in fields["question"]]
"""


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rl")
    (tmp / "toy_rewards.py").write_text(TOY_REWARDS)
    rows = [{"question": q, "answer": a} for q, a in QA]
    return tmp, write_jsonl(tmp / "train.jsonl", rows * 4), write_jsonl(tmp / "test.jsonl", rows)


def rl_overrides(toy, task: str, run_dir, reward: str = "uses_the", *extra: str) -> list[str]:
    tmp, train, test = toy
    return [f"model.name={STORIES}", f"task.name={task}", "task.template=qa",
            f"task.rewards=[{{function: {tmp}/toy_rewards.py:{reward}}}]",
            "task.max_completion_length=12", "task.num_generations=4", "task.beta=0.0",
            f"data.path={train}", f"data.test_path={test}", "data.split=[0.9,0.1,0.0]",
            "method.name=lora", "train.batch_size=8", "train.lr=0.02", "train.epochs=2",
            "train.weight_decay=0.0", "train.log_every=1", f"output.dir={run_dir}", *extra]  # fmt: skip


SMALL = ("data.limit_train=6",)  # three steps an epoch


def train_lines(run_dir) -> list[dict]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if x["event"] == "train"]


@pytest.fixture(scope="module")
def grpo_run(toy, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "grpo"
    return run_dir, run(load_config(None, rl_overrides(toy, "grpo", run_dir, "uses_the",
                                                       "train.epochs=3")))  # fmt: skip


def test_grpo_raises_the_reward_and_trains_only_the_adapter(grpo_run):
    run_dir, summary = grpo_run
    assert summary["score_name"] == "mean_reward"  # no correctness reward named: the mean ranks
    assert summary["score"] > summary["score_before"]
    rewards = [x["rewards/uses_the/mean"] for x in train_lines(run_dir)]
    third = len(rewards) // 3
    assert sum(rewards[-third:]) / third > sum(rewards[:third]) / third + 0.2, rewards
    assert_base_weights_untouched(run_dir)
    for name in [*CONTRACT, "plots/rl.png"]:
        assert (run_dir / name).exists(), name
    report = (run_dir / "report.md").read_text()
    assert "| reward uses_the |" in report and "![rl](plots/rl.png)" in report


@pytest.mark.parametrize("task", ["grpo", "rloo"])
def test_a_run_killed_after_a_checkpoint_resumes_to_its_end(toy, tmp_path, monkeypatch, task):
    run_dir = tmp_path / task
    with monkeypatch.context() as patch:
        kill_after_save(patch, epoch=1)
        with pytest.raises(Killed):
            run(load_config(None, rl_overrides(toy, task, run_dir, "uses_the", *SMALL)))
    assert not (run_dir / "eval_after.json").exists()
    summary = run(
        load_config(None, rl_overrides(toy, task, run_dir, "uses_the", *SMALL)), resume=True
    )
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines if x["event"] == "eval"] == [1, 2]
    steps = [x["step"] for x in lines if x["event"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 6  # 6 prompts x 4 completions / 8, x 2
    assert json.loads((run_dir / "train_summary.json").read_text())["epochs_run"] == 2
    assert summary["score_name"] == "mean_reward"


@pytest.mark.parametrize("task,method", [(t, m) for t in ("grpo", "rloo") for m in ("full", "qlora")])  # fmt: skip
def test_grpo_and_rloo_train_full_weights_and_a_4bit_base(toy, tmp_path, task, method):
    lr = "train.lr=0.002" if method == "full" else "train.lr=0.02"
    settings = rl_overrides(toy, task, tmp_path / "run", "uses_the", f"method.name={method}", lr,
                            "train.epochs=3")  # fmt: skip
    summary = run(load_config(None, settings))
    assert summary["score"] > summary["score_before"], (task, method)
    assert (tmp_path / "run" / ("model" if method == "full" else "adapter")).is_dir()
    if method == "qlora":
        assert_base_weights_untouched(tmp_path / "run")


def test_a_user_reward_that_raises_stops_the_run_naming_the_function_and_row(toy, tmp_path):
    _, train, _ = toy
    calm = write_jsonl(tmp_path / "test.jsonl", [{"question": q, "answer": a} for q, a in QA
                                                 if "fish" not in q])  # fmt: skip
    overrides = rl_overrides(
        toy, "grpo", tmp_path / "r", "breaks_on_fish", f"data.test_path={calm}"
    )
    code, output = run_cli("train", *overrides)
    # raised inside TRL's training loop: the first training row that asks where fish live
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    fish_rows = [i + 1 for i, r in enumerate(rows) if "fish" in r["question"]]
    # one error line among TRL's progress lines (which may share its start, after a \r)
    errors = [
        "error:" + line.split("error:", 1)[1] for line in output.splitlines() if "error:" in line
    ]
    assert code == 2 and "Traceback" not in output and len(errors) == 1, output
    assert errors[0].startswith(f"error: {train}, row ")
    assert "breaks_on_fish raised ZeroDivisionError" in errors[0]
    assert int(errors[0].split(", row ")[1].split(":")[0]) in fish_rows


@pytest.mark.parametrize(
    ("returned", "expected"),
    [(lambda n: [1.0] * (n - 1), "returned 2 values for 3 completions"),
     (lambda n: [1.0, "yes", 1.0], "returned 'yes' (str), not a finite number"),
     (lambda n: 1.0, "returned a float, not a list of 3 numbers"),
     (lambda n: [1.0, float("inf"), 1.0], "returned inf (float), not a finite number")],
)  # fmt: skip
def test_a_reward_of_the_wrong_count_or_type_is_one_line_naming_the_row(returned, expected):
    reward = checked("mine", lambda prompts, completions, **fields: returned(len(completions)))
    with pytest.raises(DataError) as error:
        reward(["p"] * 3, ["c"] * 3, _row=[4, 5, 6], _file=["d.jsonl"] * 3, answer=["a"] * 3)
    assert expected in str(error.value) and "d.jsonl" in str(error.value)
    row = 5 if ("yes" in expected or "inf" in expected) else 4
    assert f"row {row}" in str(error.value)


def test_built_in_rewards_check_the_answer_the_pattern_and_the_length():
    specs = [RewardSpec(function="exact_number"), RewardSpec(function="exact_text"),
             RewardSpec(function="regex", pattern=r"^\d+ \+ \d+ = \d+"),
             RewardSpec(function="length_penalty", max_tokens=4)]  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(STORIES)
    rewards = {r.name: r.function for r in build_rewards(specs, tokenizer, 8)}
    completions = ["59 + 63 = 122.", "122", "It is 1,220 I think, a long long long answer"]
    fields = {"answer": ["122", "122", "1220"]}
    assert rewards["exact_number"]([""] * 3, completions, **fields) == [1.0, 1.0, 1.0]
    assert rewards["exact_text"]([""] * 3, completions, **fields) == [0.0, 1.0, 0.0]
    assert rewards["regex"]([""] * 3, completions, **fields) == [1.0, 0.0, 0.0]
    penalties = rewards["length_penalty"]([""] * 3, completions, **fields)
    assert penalties[1] == 0.0 and penalties[2] < -1.0


def test_a_bad_reward_setting_is_a_one_line_error(toy, tmp_path):
    overrides = rl_overrides(toy, "grpo", tmp_path / "r", "nowhere")
    code, output = run_cli("train", *overrides)
    assert_one_line_error(code, output, "toy_rewards.py has no function nowhere")
    code, output = run_cli("train", *overrides, "task.rewards=[{function: regex}]")
    assert_one_line_error(code, output, "task.rewards", "regex needs pattern")
    code, output = run_cli("train", *overrides, "task.rewards=[{function: exact_number}]")
    assert_one_line_error(code, output, "row 1", "field 'answer'", "is not a number")
    code, output = run_cli("train", *overrides[:-1], "train.batch_size=6", overrides[-1])
    assert_one_line_error(code, output, "multiple of task.num_generations")
    code, output = run_cli(
        "train", *overrides, "task.rewards=[{function: exact_number, weight: 0}]"
    )
    assert_one_line_error(code, output, "task.rewards", "other than 0")
    # a reward file that ends the process at import ended the run with exit 0 and no result
    quits = tmp_path / "quits.py"
    quits.write_text("import sys\nsys.exit(0)\n")
    code, output = run_cli("train", *overrides, f"task.rewards=[{{function: '{quits}:f'}}]")
    assert_one_line_error(code, output, "quits.py fails to load", "SystemExit")


def test_orpo_prefers_the_chosen_answers_without_a_reference(pairs_file, tmp_path):  # noqa: F811
    summary = run(load_config(None, overrides("orpo", pairs_file, tmp_path / "orpo")))
    assert summary["score_name"] == "policy_accuracy_per_token"
    assert summary["score"] >= 0.9 > summary["score_before"]
    assert_base_weights_untouched(tmp_path / "orpo")
