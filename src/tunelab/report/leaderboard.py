"""The comparison table, read from each variant's run directories (one per seed). Which score
ranks, which way, and which extra columns show is the task's to say.

Each figure is a mean over the variant's seeds with its 95 % interval; each variant is judged
against the leader by a paired bootstrap over the test examples (report/intervals.py), on its
per-example outcomes averaged over seeds. The untrained start ("before") is a row of its own."""

import json
from pathlib import Path

import numpy as np

from tunelab.files import write_whole
from tunelab.hardware import describe_machine
from tunelab.report.intervals import TIED_P, mean_interval, paired_bootstrap
from tunelab.report.leaderboard_plots import benchmark_keys, draw_plots, plot_links
from tunelab.run_record import is_finished, read_record
from tunelab.tasks import TASKS
from tunelab.tasks.base import Column

BEFORE = "before"  # the row of the model as it started (its untrained head, its base weights)
HEAD = (
    Column("method", "method", "{}"),
    Column("score", "score"),
    Column("score_before", "before"),
    Column("verdict", "vs best", "{}"),
    Column("seeds", "seeds", "{}"),
)
TAIL = (
    Column("trainable_params", "trainable", "{:,.0f}"),
    Column("trainable_pct", "trainable %", "{:.3f}"),
    Column("train_seconds", "train s", "{:.1f}"),
    Column("trained_tokens", "trained tokens", "{:,.0f}"),
    Column("peak_rss_mb", "peak RSS MB", "{:,.0f}"),
    Column("peak_gpu_mb", "peak GPU MB", "{:,.0f}"),
    Column("tokens_per_s", "tokens/s", "{:,.0f}"),
    Column("artifact_mb", "saved MB", "{:.2f}"),
)
AVERAGED = tuple(c.key for c in TAIL) + ("score_before", "wall_seconds")


def columns_of(rows: list[dict]) -> list[Column]:
    """The common columns around those the rows' tasks add; a column shows when a row has it."""
    ok = [r for r in rows if r["status"] == "ok" and r.get("task")]
    extra = [c for r in ok for c in row_columns(r["task"], r)]
    columns = list(dict.fromkeys([*HEAD, *extra, *TAIL]))
    return [c for c in columns if c.key == "method" or any(r.get(c.key) is not None for r in rows)]


def row_columns(task: str, summary: dict) -> tuple[Column, ...]:
    """The task's own extra columns, then each standard benchmark's figure and its change
    (eval.bench: `bench.NAME`, `bench.NAME.change` in the run summary)."""
    keys = [k for k in summary if k.startswith("bench.")]
    bench = tuple(
        Column(k, k.removeprefix("bench.").replace(".change", " change"), "{:+.3f}")
        if k.endswith(".change")
        else Column(k, k.removeprefix("bench."), "{:.3f}")
        for k in keys
    )
    return TASKS.get(task).columns_for(summary) + bench


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def collect_row(name: str, run_dir: Path) -> dict:
    """One run's row; a run that did not finish is listed as failed."""
    if not is_finished(run_dir):
        return {"method": name, "status": "failed", "run_dir": str(run_dir)}
    record = read_record(run_dir)
    summary = json.loads((run_dir / "train_summary.json").read_text())
    # The saved model, without the tokenizer files every artefact carries.
    artifact = run_dir / record.artifact
    tokenizer_mb = sum(f.stat().st_size for f in artifact.glob("*token*") if f.is_file()) / 2**20
    return {
        "method": name,
        "status": "ok",
        "run_dir": str(run_dir),
        "task": record.task,
        "score_name": summary["score_name"],
        "higher_is_better": summary["higher_is_better"],
        "score": summary["score"],
        "score_before": summary["score_before"],
        **{c.key: summary.get(c.key) for c in row_columns(record.task, summary)},
        "trainable_params": summary["parameters"]["trainable"],
        "trainable_pct": summary["parameters"]["trainable_pct"],
        "train_seconds": summary["train_seconds"],
        "trained_tokens": summary.get("trained_tokens"),
        "wall_seconds": summary["wall_seconds"],
        "peak_rss_mb": summary["peak_rss_mb"],
        "peak_gpu_mb": summary.get("peak_gpu_mb"),
        "tokens_per_s": summary["tokens_per_s"],
        "artifact_mb": folder_mb(artifact) - tokenizer_mb,
        "precision": (summary.get("precision") or {}).get("used"),
        "machine": summary.get("machine"),
    }


def outcomes_of(run_dir: Path, when: str) -> np.ndarray | None:
    """The run's per-example outcomes of its score (eval_{before,after}.json), in test order;
    None where its task does not keep them."""
    summary = json.loads((run_dir / "train_summary.json").read_text())
    figures = json.loads((run_dir / f"eval_{when}.json").read_text())
    values = (figures.get("per_example") or {}).get(summary.get("score_field"))
    return None if values is None else np.asarray(values, dtype=float)


def seed_mean(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    """Each example's outcome averaged over seeds (the same examples in every seed's run)."""
    if not arrays or any(a is None for a in arrays) or len({len(a) for a in arrays}) > 1:
        return None
    return np.mean(arrays, axis=0)


def averaged(runs: list[dict]) -> dict:
    """One row from a variant's seed runs: each figure's mean, the score's interval."""
    row = {k: v for k, v in runs[0].items() if k not in AVERAGED}
    for key in AVERAGED:
        values = [r[key] for r in runs if r.get(key) is not None]
        row[key] = float(np.mean(values)) if values else None
    # The task's figures and each benchmark's: a mean over seeds with its interval, as the score
    # (a benchmark category's counts move by a few questions from seed to seed).
    extra = dict.fromkeys(c.key for r in runs for c in row_columns(r["task"], r))
    row["intervals"] = {}
    for key in extra:
        values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
        if values:
            row[key], row["intervals"][key] = mean_interval(values)
    row["score"], row["score_ci"] = mean_interval([r["score"] for r in runs])
    row["seed_scores"] = [r["score"] for r in runs]
    row["seeds"] = len(runs)
    row["run_dirs"] = [r["run_dir"] for r in runs]
    return row


def variant_row(name: str, run_dirs: list[Path]) -> tuple[dict, np.ndarray | None]:
    runs = [collect_row(name, run_dir) for run_dir in run_dirs]
    failed = [r["run_dir"] for r in runs if r["status"] != "ok"]
    if failed:
        return {"method": name, "status": "failed", "run_dir": failed[0]}, None
    return averaged(runs), seed_mean([outcomes_of(Path(d), "after") for d in run_dirs])


def before_row(run_dirs: list[Path]) -> tuple[dict, np.ndarray | None]:
    """The model as a variant's runs started, scored on the same test examples."""
    runs = [collect_row(BEFORE, run_dir) for run_dir in run_dirs]
    first = runs[0]
    row = {
        "method": BEFORE,
        "status": "ok",
        "task": first["task"],
        "score_name": first["score_name"],
        "higher_is_better": first["higher_is_better"],
        "seeds": len(runs),
    }
    row["score"], row["score_ci"] = mean_interval([r["score_before"] for r in runs])
    row |= base_benchmarks(runs)
    return row, seed_mean([outcomes_of(Path(d), "before") for d in run_dirs])


def base_benchmarks(runs: list[dict]) -> dict:
    """Each benchmark's figure for the start: the tuned figure less its change (a run's summary
    keeps those two; the base is one model, scored alike in every seed's run)."""
    return {
        key: float(np.mean([r[key] - r[f"{key}.change"] for r in runs]))
        for key in benchmark_keys(runs[:1])
        if all(r.get(key) is not None and r.get(f"{key}.change") is not None for r in runs)
    }


def judge(rows: list[dict], outcomes: list[np.ndarray | None]) -> None:
    """The verdict column: the leader is best; each other row is tied with it when the paired
    bootstrap's p-value is at least TIED_P, else worse."""
    ok = [i for i, r in enumerate(rows) if r["status"] == "ok"]
    if not ok:
        return
    sign = 1 if rows[ok[0]]["higher_is_better"] else -1
    leader = max(ok, key=lambda i: sign * rows[i]["score"])
    rows[leader]["verdict"] = "best"
    for i in ok:
        a, b = outcomes[leader], outcomes[i]
        if i == leader or a is None or b is None or len(a) != len(b):
            continue
        difference = paired_bootstrap(a, b)
        rows[i]["p_value"] = difference.p_value
        rows[i]["difference"] = {
            "mean": difference.mean,
            "low": difference.low,
            "high": difference.high,
        }
        tied = difference.p_value >= TIED_P
        rows[i]["verdict"] = f"{'tied' if tied else 'worse'} (p={difference.p_value:.3f})"


def board_rows(variants: list[tuple[str, list[Path]]]) -> list[dict]:
    """Every variant's row (its seed runs averaged), the before row, the verdicts."""
    pairs = [variant_row(name, run_dirs) for name, run_dirs in variants]
    trained = [
        dirs
        for (row, _), (_, dirs) in zip(pairs, variants, strict=True)
        if row["status"] == "ok" and row["trainable_params"] > 0
    ]
    if trained:
        pairs.append(before_row(trained[0]))
    rows, outcomes = [p[0] for p in pairs], [p[1] for p in pairs]
    judge(rows, outcomes)
    return rows


def score_title(rows: list[dict]) -> str:
    names = {r["score_name"] for r in rows if r["status"] == "ok"}
    return names.pop().replace("_", " ") if len(names) == 1 else "score"


def cell(row: dict, column: Column) -> str:
    value = row.get(column.key)
    if value is None:
        return "–"
    text = column.fmt.format(value)
    if column.key == "score" and row.get("score_ci") is not None:
        text += f" ± {row['score_ci']:.4f}"
    elif row.get("intervals", {}).get(column.key) is not None:
        # A half-width has no sign: a change column's "+" is dropped.
        text += " ± " + column.fmt.replace("+", "").format(row["intervals"][column.key])
    return text


def markdown_table(rows: list[dict]) -> str:
    columns = columns_of(rows)
    titles = [score_title(rows) if c.key == "score" else c.title for c in columns]
    lines = ["| " + " | ".join(titles) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        cells = [cell(row, c) for c in columns]
        if row["status"] != "ok":
            cells = [row["method"], "failed"] + ["–"] * (len(columns) - 2)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measured_on(rows: list[dict]) -> list[str]:
    """Where the times were measured: they move with the CPU (AVX2, AVX-512, AMX) and threads."""
    machines = dict.fromkeys(describe_machine(r["machine"]) for r in rows if r.get("machine"))
    return [f"Measured on: {'; '.join(machines)}.", ""] if machines else []


def how_to_read(rows: list[dict]) -> list[str]:
    seeds = max((r.get("seeds") or 1 for r in rows if r["status"] == "ok"), default=1)
    spread = (
        f"mean ± 95 % interval (Student t) over {seeds} seeds; "
        if seeds > 1
        else "one seed each (no interval: `seeds: [1, 2, 3]` gives one); "
    )
    return [
        f"Sorted by {score_title(rows)}: {spread}`vs best`: a paired bootstrap over the test "
        f"examples against the leader (10,000 resamples), tied when p ≥ {TIED_P}.",
        "",
    ]


def write_leaderboard(rows: list[dict], out: Path, notes: list[str] = ()) -> tuple[Path, str]:
    """leaderboard.{md,json} and plots; returns the markdown file and its table."""
    ok = [r for r in rows if r["status"] == "ok"]
    ok.sort(key=lambda r: -r["score"] if r["higher_is_better"] else r["score"])
    ranked = ok + [r for r in rows if r["status"] != "ok"]
    write_whole(out / "leaderboard.json", json.dumps(ranked, indent=2))
    plots = draw_plots(ok, out / "plots", score_title(ok)) if ok else []
    table = markdown_table(ranked)
    text = "\n".join(
        [
            f"# Leaderboard: {out.name}",
            "",
            *how_to_read(ranked),
            *measured_on(ok),
            *notes,
            table,
            "",
            *plot_links(plots),
        ]
    )
    path = out / "leaderboard.md"
    write_whole(path, text)
    return path, table
