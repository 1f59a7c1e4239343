"""The UI's workspace: one folder holding what the UI writes (configs, uploads, job logs) and
the runs it starts. Every path the browser names is resolved inside it: `..`, absolute paths
and links that lead out are refused with a one-line error."""

import re
from dataclasses import dataclass
from pathlib import Path

from tunelab.errors import TunelabError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BUILTIN_PREFIX = "builtin:"
DATA_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")  # what data.path reads


class OutsideWorkspace(TunelabError):
    """A path that resolves outside the workspace."""


def check_name(name: str, what: str = "run name") -> str:
    """Names become folder names: letters, digits, `_`, `-`, `.`; no path separators."""
    if not NAME.match(name or ""):
        raise TunelabError(
            f"{what} '{name}': use 1-64 letters, digits, '_', '-' or '.' (no '/' or spaces)"
        )
    return name


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, folder: str | Path) -> "Workspace":
        root = Path(folder).expanduser().resolve()
        try:
            for sub in ("configs", "data", "runs", "jobs", "models", "compare"):
                (root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, no permission: it was a traceback
            raise TunelabError(
                f"--workspace {folder}: cannot be made a workspace ({exc.strerror})"
            ) from None
        return cls(root)

    def inside(self, relative: str) -> Path:
        """`relative` (as typed in the browser) as a path inside the workspace."""
        text = (relative or "").strip()
        if not text:
            raise TunelabError("a path is needed")
        candidate = Path(text)
        if candidate.is_absolute() or ".." in candidate.parts:
            raise OutsideWorkspace(f"{text}: give a path inside the workspace ({self.root})")
        resolved = (self.root / candidate).resolve()
        if not resolved.is_relative_to(self.root):  # a link inside that points out
            raise OutsideWorkspace(f"{text}: leads outside the workspace ({self.root})")
        return resolved

    def data_path(self, text: str) -> str:
        """A data setting as the run config gets it: a built-in name, or a workspace file."""
        if text.startswith(BUILTIN_PREFIX):
            return text
        path = self.inside(text)
        if not path.exists():
            raise TunelabError(f"{text}: no such file in the workspace")
        return str(path)

    def relative(self, path: str | Path) -> str:
        return str(Path(path).resolve().relative_to(self.root))

    def run_dir(self, name: str) -> Path:
        return self.root / "runs" / check_name(name)

    def config_file(self, name: str) -> Path:
        return self.root / "configs" / f"{check_name(name)}.yaml"

    def holds(self, path: Path) -> bool:
        """Whether `path`, links followed, is inside the workspace (a link may point out)."""
        return path.resolve().is_relative_to(self.root)

    def files(self, folder: str, suffixes: tuple[str, ...]) -> list[str]:
        """Workspace files under `folder` with one of `suffixes`, as workspace-relative paths;
        a link that leads out of the workspace is not offered (it made the form a 500)."""
        base = self.root / folder
        found = [p for p in base.rglob("*") if p.is_file() and p.suffix in suffixes]
        return sorted(self.relative(p) for p in found if self.holds(p))

    def model_folders(self) -> list[str]:
        """Local models: folders under models/ with a config.json (not through a link out)."""
        found = (self.root / "models").glob("*/config.json")
        return sorted(self.relative(p.parent) for p in found if self.holds(p.parent))
