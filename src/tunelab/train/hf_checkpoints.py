"""Which of the Hugging Face Trainer's `checkpoint-N` folders (the "trl" trainer's) can be
resumed from. The Trainer writes into the folder itself and has no check of its own: a kill leaves
a folder with truncated files, which `resume_from_checkpoint` loads with a traceback. Here a
folder counts when its trainer_state.json (written last) parses, each safetensors file is as long
as its header says and each torch zip file passes its CRC check; the newest such one is used, and
one line names any newer one that was skipped."""

import json
import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def safetensors_damage(path: Path) -> str | None:
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(header_len))
    except (struct.error, ValueError, MemoryError, OverflowError):
        return f"{path.name} has an unreadable header"
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if size != 8 + header_len + end:
        return f"{path.name} has {size} bytes, expected {8 + header_len + end}"
    return None


def zip_damage(path: Path) -> str | None:
    if not zipfile.is_zipfile(path):
        return f"{path.name} is truncated"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError):
        return f"{path.name} is truncated"
    return None if bad is None else f"{path.name} fails its checksum ({bad})"


def checkpoint_damage(folder: Path) -> str | None:
    """Why a checkpoint-N folder cannot be resumed from, or None."""
    try:
        json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "no complete trainer_state.json"
    for path in sorted(folder.iterdir()):
        if path.suffix == ".safetensors":
            problem = safetensors_damage(path)
        elif path.suffix in {".pt", ".pth", ".bin"}:
            problem = zip_damage(path)
        else:
            continue
        if problem:
            return problem
    return None


def newest_intact_checkpoint(folder: Path, say: Callable[[str], None]) -> Path | None:
    found = [p for p in folder.glob("checkpoint-*") if CHECKPOINT.match(p.name)]
    found.sort(key=lambda p: int(CHECKPOINT.match(p.name).group(1)), reverse=True)
    for position, candidate in enumerate(found):
        problem = checkpoint_damage(candidate)
        if problem is None:
            if position:
                say(f"resuming from {candidate}: the newer {found[0].name} is damaged")
            return candidate
        if position == 0 and len(found) == 1:
            say(f"{candidate} is damaged ({problem}); starting from the beginning")
        elif position == 0:
            say(f"{candidate} is damaged ({problem})")
    return None
