"""YAML files as tunelab reads them (configs, experiments): UTF-8, no key given twice, a
mapping at the top; every problem one line naming the file."""

from pathlib import Path
from typing import Any

import yaml

from tunelab.errors import TunelabError


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word; a config must not. A merge key
    (`<<: *defaults`) is YAML's own way to override, so its keys are not counted (they were
    refused as a tag with no constructor)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"'{key}' is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TunelabError(f"config file not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TunelabError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        raw = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise TunelabError(f"{path}:{line} {problem}") from None
    if raw is None:
        raise TunelabError(
            f"{path}: the config is empty; give at least data.path (and task.name, method.name), "
            "or leave the config out to run the built-in default"
        )
    if not isinstance(raw, dict):
        raise TunelabError(f"{path}: the config must be a mapping of sections")
    return raw
