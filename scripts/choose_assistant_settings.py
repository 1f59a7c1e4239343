"""Choose the seed-003 assistant's remedy and its scope guard's threshold on the development set,
never on the test sets (issue 32).

    tunelab compare configs/compare_assistant_dev.yaml          # the variants, scored on dev
    python scripts/choose_assistant_settings.py runs/compare_assistant_dev

For each variant it reads the dev figures its run recorded (the LM alone, and the guard's
off-topic probability per question), picks the guard threshold that refuses the most dev
off-topic questions with at most 5 % false refusals in either style, and counts the targets the
variant meets on dev. The variant meeting the most (then: the most key facts) wins. It prints
the table, writes choice.json and threshold_curve.png in the experiment folder, and prints the
commands that score the chosen run on the test sets, once (scripts/score_assistant_on_test.py),
and that train the chosen settings anew."""

import json
import sys
from pathlib import Path

import yaml

from tunelab.charts import plt, save
from tunelab.tasks.generative.scope_guard import choose_threshold, threshold_curve

MAX_FALSE_REFUSAL = 0.05
BASE = "configs/assistant_smollm2_qlora.yaml"
# The development sets' names in configs/compare_assistant_dev.yaml: `test` is dev.jsonl
# (written paraphrases + in-distribution off-topic), then the casual and unseen-source sets.
WRITTEN, CASUAL, UNSEEN = "test", "casual", "offtopic_ood"


def set_rows(after: dict, name: str) -> list[dict]:
    return after["answers"] if name == WRITTEN else after["sets"][name]["answers"]


def variant_figures(run: Path, refusal: str) -> dict:
    """The LM's own dev figures and the guard's at the threshold chosen for this variant."""
    after = json.loads((run / "eval_after.json").read_text())
    sets = {name: set_rows(after, name) for name in (WRITTEN, CASUAL, UNSEEN)}
    curve = threshold_curve(sets, refusal)
    chosen = choose_threshold(curve, MAX_FALSE_REFUSAL)
    lm = after["sets"]
    return {
        "key_facts": [lm[WRITTEN]["key_fact_hit_rate"], lm[CASUAL]["key_fact_hit_rate"]],
        "false_refusals": [lm[WRITTEN]["false_refusal_rate"], lm[CASUAL]["false_refusal_rate"]],
        "unseen_refusals": lm[UNSEEN]["refusal_rate"],
        "threshold": chosen["threshold"],
        "threshold_feasible": chosen["feasible"],
        "guard_unseen_refusals": chosen[UNSEEN]["refusal_rate"],
        "guard_false_refusals": [
            chosen[WRITTEN]["false_refusal_rate"],
            chosen[CASUAL]["false_refusal_rate"],
        ],
        "curve": curve,
    }


def targets_met(f: dict) -> int:
    """Issue 32's targets for the assistant, counted on the development set."""
    return sum(
        [
            f["unseen_refusals"] >= 0.85,
            f["guard_unseen_refusals"] >= 0.95,
            max(f["false_refusals"]) <= MAX_FALSE_REFUSAL,
            max(f["guard_false_refusals"]) <= MAX_FALSE_REFUSAL,
            min(f["key_facts"]) >= 0.75,
        ]
    )


def plot_curve(curve: list[dict], chosen: float, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6.4, 3.6))
    xs = [p["threshold"] for p in curve]
    axis.plot(xs, [p[UNSEEN]["refusal_rate"] for p in curve], label="unseen-source refusals")
    for name, style in ((WRITTEN, "--"), (CASUAL, ":")):
        label = f"false refusals, {'written' if name == WRITTEN else 'casual'}"
        axis.plot(xs, [p[name]["false_refusal_rate"] for p in curve], style, label=label)
    axis.axvline(chosen, color="grey", linewidth=0.8)
    axis.axhline(MAX_FALSE_REFUSAL, color="grey", linewidth=0.5, linestyle="--")
    axis.set_xlabel("guard threshold (off-topic probability)")
    axis.set_ylabel("share of the dev set")
    axis.set_title(f"scope guard on the development set (chosen {chosen})")
    axis.legend(fontsize=8)
    save(figure, path)


def main(folder: Path) -> None:
    ran = yaml.safe_load((folder / "experiment_ran.yaml").read_text())
    refusal = None
    figures = {}
    for variant in ran["variants"]:
        run = folder / variant["name"]
        if not (run / "eval_after.json").is_file():
            print(f"{variant['name']}: not finished, left out")
            continue
        record = json.loads((run / "run_info.json").read_text())
        refusal = record["task_settings"]["refusal"]
        figures[variant["name"]] = variant_figures(run, refusal)
    best = max(figures, key=lambda v: (targets_met(figures[v]), sum(figures[v]["key_facts"])))
    print("| variant | key facts written / casual | false refusals written / casual | "
          "unseen refusals | guard threshold | + guard: unseen refusals | + guard: false "
          "refusals | targets met (of 5) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, f in figures.items():
        mark = " (chosen)" if name == best else ""
        print(
            f"| {name}{mark} | {f['key_facts'][0]:.2f} / {f['key_facts'][1]:.2f} | "
            f"{f['false_refusals'][0]:.2f} / {f['false_refusals'][1]:.2f} | "
            f"{f['unseen_refusals']:.2f} | {f['threshold']} | {f['guard_unseen_refusals']:.2f} | "
            f"{f['guard_false_refusals'][0]:.2f} / {f['guard_false_refusals'][1]:.2f} | "
            f"{targets_met(f)} |"
        )
    overrides = next(v for v in ran["variants"] if v["name"] == best).get("overrides", [])
    command = " ".join(
        ["tunelab train", BASE, *[f"'{o}'" for o in overrides],
         f"task.scope_guard_threshold={figures[best]['threshold']}",
         "output.dir=runs/assistant_chosen_on_dev"]
    )  # fmt: skip
    plot_curve(figures[best]["curve"], figures[best]["threshold"], folder / "threshold_curve.png")
    choice = {"chosen": best, "command": command, "variants": figures}
    (folder / "choice.json").write_text(json.dumps(choice, indent=1))
    print(
        f"\nchosen on the development set: {best}; the test sets, scored once:\n"
        f"python scripts/score_assistant_on_test.py {folder}\nto train these settings anew:\n"
        f"{command}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/compare_assistant_dev"))
