"""The layer order of docs/architecture.md, checked on every import in src (module level and inside
functions): a module imports only from its own layer or below, never upward."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tunelab"

# lowest first; a module's layer is that of its longest listed prefix
LAYERS = [
    ["errors", "files", "progress", "registry", "hardware", "run_record", "charts"],
    ["resources"],  # data files (the built-in SMS set)
    ["config"],
    ["data", "models", "runtime", "precision_probe", "generation"],
    ["methods"],
    ["artifacts", "export"],
    ["tasks"],
    ["train"],
    ["report", "doctor", "bench"],
    ["pipeline"],
    ["compare", "quantize", "inference", "assistant"],
    ["serve", "ui"],
    ["cli"],
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}


def level_of(module: str) -> int | None:
    """tunelab.tasks.classify.metrics -> the level of `tasks`; the package root has none."""
    parts = module.split(".")[1:]
    return LEVEL[parts[0]] if parts else None


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tunelab"):
            found += [(node.lineno, node.module)]
            if node.module == "tunelab":  # from tunelab import tasks
                found += [(node.lineno, f"tunelab.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("tunelab")]
    return found


def test_every_module_has_a_layer_and_no_import_goes_up():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(("tunelab", *path.relative_to(SRC).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        own = level_of(module)
        if own is None:
            continue  # tunelab/__init__.py: warnings filters only
        for line, target in imports_of(path):
            theirs = level_of(target)
            if theirs is not None and theirs > own:
                upward.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    assert upward == []


def test_the_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from tunelab.pipeline import run\n")
    assert [target for _, target in imports_of(bad)] == ["tunelab.pipeline"]
    assert level_of("tunelab.pipeline") > level_of("tunelab.config")
