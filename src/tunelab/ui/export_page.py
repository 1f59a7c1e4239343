"""Export buttons: the same commands as the CLI (`tunelab export`, `tunelab quantize`), run as
jobs; the page shows their output, which says where the files went."""

from tunelab.errors import TunelabError
from tunelab.run_record import read_record
from tunelab.ui import jobs
from tunelab.ui.runs import status_of
from tunelab.ui.workspace import Workspace

EXPORTS = {
    "merge": "a Hugging Face folder with LoRA / IA3 folded in",
    "hf": "a Hugging Face folder (the adapter as trained)",
    "gguf": "GGUF for llama.cpp (f16)",
    "ollama": "GGUF + Modelfile for Ollama",
    "quantize": "INT8 / 4-bit size, speed and accuracy (classify runs)",
}


def export_args(workspace: Workspace, name: str, action: str) -> list[str]:
    run_dir = workspace.run_dir(name)
    if action == "quantize":
        return ["quantize", str(run_dir)]
    out = workspace.root / "exports" / f"{name}-{action}"
    formats = {"merge": ["--format", "hf", "--merge"], "hf": ["--format", "hf"]}
    extra = formats.get(action, ["--format", action])
    return ["export", str(run_dir), "--out", str(out), *extra]


def start_export(workspace: Workspace, name: str, action: str) -> dict:
    if action not in EXPORTS:
        raise TunelabError(f"action: '{action}' is not one of {', '.join(EXPORTS)}")
    read_record(workspace.run_dir(name))  # a finished run, or its one-line error
    jobs.launch(workspace, "export", name, export_args(workspace, name, action))
    return export_view(workspace, name)


def export_view(workspace: Workspace, name: str) -> dict:
    log = jobs.log_tail(workspace, "export", name)
    done = any(line.startswith(("exported:", "{")) for line in log)
    status, error = status_of(workspace, "export", name, done)
    return {"name": name, "status": status, "error": error, "log": log}
