"""The Compare page: a leaderboard of runs picked from the workspace (the same rows and plots
`tunelab compare` writes), or a new `tunelab compare` of the methods ticked in the form."""

import yaml

from tunelab.errors import TunelabError
from tunelab.report.leaderboard import collect_row, write_leaderboard
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
    write_leaderboard(rows, out)
    return leaderboard(workspace, PICKED)


def start_compare(workspace: Workspace, values: dict, methods: list[str]) -> dict:
    """The form's run as the base config, one variant per ticked method; `tunelab compare`."""
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
        "variants": [{"name": m, "overrides": [f"method.name={m}"]} for m in methods],
    }
    (folder / "experiment.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    jobs.launch(workspace, "compare", name, ["compare", str(folder / "experiment.yaml")])
    return compare_view(workspace, name)


def compare_view(workspace: Workspace, name: str) -> dict:
    board = leaderboard(workspace, name)
    status, error = status_of(workspace, "compare", name, bool(board["rows"]))
    log = jobs.log_tail(workspace, "compare", name)
    return {"name": name, "status": status, "error": error, "log": log, **board}
