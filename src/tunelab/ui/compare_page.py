"""The Compare page: a leaderboard of runs picked from the workspace (the same rows and plots
`tunelab compare` writes), or a new `tunelab compare` of the methods ticked in the form."""

from dataclasses import dataclass

import yaml

from tunelab.errors import TunelabError
from tunelab.report.leaderboard import board_rows, collect_row, write_leaderboard
from tunelab.ui import jobs
from tunelab.ui.forms import FieldError, build_config, config_yaml
from tunelab.ui.runs import status_of
from tunelab.ui.workspace import Workspace, check_name

PICKED = "picked"  # compare/picked/: the leaderboard of the runs picked last


def leaderboard(workspace: Workspace, folder: str) -> dict:
    out = workspace.root / "compare" / folder
    path = out / "leaderboard.json"
    if not path.is_file():
        return {"rows": [], "plots": []}
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    return {
        "rows": yaml.safe_load(path.read_text()),
        "plots": [f"/files/compare/{folder}/plots/{name}" for name in plots],
    }


def compare_runs(workspace: Workspace, names: list[str]) -> dict:
    if len(names) < 2:
        raise TunelabError("runs: pick at least two runs")
    rows = [collect_row(name, workspace.run_dir(name)) for name in names]
    tasks = {row.get("task") for row in rows if row["status"] == "ok"}
    if len(tasks) > 1:
        raise TunelabError(f"runs: pick runs of one task (these are {', '.join(sorted(tasks))})")
    out = workspace.root / "compare" / PICKED
    out.mkdir(parents=True, exist_ok=True)
    # the same rows as `tunelab compare`: the start as a row, each run judged against the best
    write_leaderboard(board_rows([(name, [workspace.run_dir(name)]) for name in names]), out)
    return leaderboard(workspace, PICKED)


# the learning-rate range a UI search covers (two decades either side of the usual rates)
SEARCHED_LR = {"log": [1.0e-5, 1.0e-2]}


@dataclass
class ComparePlan:
    """What the Compare form asks besides the run: methods, seeds, trials and a token budget."""

    methods: list[str]
    seeds: str = ""
    trials: int = 0
    tokens: int | None = None

    def experiment_fields(self) -> dict:
        fields: dict = {}
        if self.seeds.strip():
            try:
                seeds = [int(part) for part in self.seeds.split(",") if part.strip()]
            except ValueError:
                raise FieldError("seeds", "seeds: whole numbers, e.g. 1,2,3") from None
            if len(set(seeds)) < len(seeds):
                raise FieldError("seeds", "seeds: give distinct seeds, e.g. 1,2,3")
            fields["seeds"] = seeds
        if self.trials:
            fields["search"] = {"trials": self.trials, "train.lr": SEARCHED_LR}
        if self.tokens:
            fields["budget"] = {"tokens": self.tokens}
        return fields


def start_compare(workspace: Workspace, values: dict, plan: ComparePlan) -> dict:
    """The form's run as the base config, one variant per ticked method, the form's seeds,
    search and budget; `tunelab compare`."""
    fields = plan.experiment_fields()
    name = check_name(str(values.get("name", "")))
    _, raw, _ = build_config(workspace, values)
    folder = workspace.root / "compare" / name
    if folder.exists():
        raise FieldError("name", f"name: a comparison called '{name}' exists; choose another name")
    folder.mkdir(parents=True)
    raw.get("output", {}).pop("dir", None)
    (folder / "base.yaml").write_text(config_yaml(raw))
    experiment = {
        "base": "base.yaml",
        "output_dir": str(folder),
        **fields,
        "variants": [{"name": m, "overrides": [f"method.name={m}"]} for m in plan.methods],
    }
    (folder / "experiment.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    jobs.launch(workspace, "compare", name, ["compare", str(folder / "experiment.yaml")])
    return compare_view(workspace, name)


def compare_view(workspace: Workspace, name: str) -> dict:
    board = leaderboard(workspace, name)
    status, error = status_of(workspace, "compare", name, bool(board["rows"]))
    log = jobs.log_tail(workspace, "compare", name)
    return {"name": name, "status": status, "error": error, "log": log, **board}
