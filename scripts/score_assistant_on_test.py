"""Score the run chosen on the development set on the test sets, once (issue 32): the finished
model and its scope guard, at the threshold chosen on dev, answer the test questions. Nothing is
trained again, so the figures are those of the very model the choice was made with.

    python scripts/score_assistant_on_test.py runs/compare_assistant_dev

Reads choice.json (scripts/choose_assistant_settings.py), prints the test table and writes
test_scores.json in the experiment folder."""

import json
import sys
from pathlib import Path

from tunelab.artifacts import load_run
from tunelab.pipeline import load_config, open_task
from tunelab.tasks.generative.scope_guard import guard_run_dir

TEST_SETS = [
    "data.test_path=data/assistant/test.jsonl",
    "eval.test_sets={casual: data/assistant/test_casual.jsonl, "
    "offtopic_ood: data/assistant/test_offtopic_ood.jsonl}",
]
FIGURES = ("key_fact_hit_rate", "false_refusal_rate", "refusal_rate", "invented_fact_rate")


def main(folder: Path) -> None:
    choice = json.loads((folder / "choice.json").read_text())
    run_dir = folder / choice["chosen"]
    threshold = choice["variants"][choice["chosen"]]["threshold"]
    config = load_config(
        run_dir / "config.yaml", [*TEST_SETS, f"task.scope_guard_threshold={threshold}"]
    )
    task = open_task(config)
    task.prepare()
    model, _, _ = load_run(run_dir)
    task.use_side_run(guard_run_dir(run_dir))
    after = task.evaluate(model)
    sets = {
        name: {
            "lm": {k: scores.get(k) for k in FIGURES},
            "with_guard": {k: scores.get("with_guard", {}).get(k) for k in FIGURES},
        }
        for name, scores in after["sets"].items()
    }
    print(f"test sets, scored once: {choice['chosen']}, guard threshold {threshold}")
    print("| set | figure | LM | LM + guard |")
    print("| --- | --- | --- | --- |")
    for name, figures in sets.items():
        for key in FIGURES:
            lm, guarded = figures["lm"][key], figures["with_guard"][key]
            if lm is not None:
                shown = f"{guarded:.2f}" if guarded is not None else "-"
                print(f"| {name} | {key} | {lm:.2f} | {shown} |")
    result = {"chosen": choice["chosen"], "threshold": threshold, "sets": sets}
    (folder / "test_scores.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/compare_assistant_dev"))
