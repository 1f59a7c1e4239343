"""Benchmark figures of an unchanged model, kept per benchmark. The base a run started from is
scored once for all its runs (`tunelab bench` on ten LoRA runs of SmolLM2 scores SmolLM2 once),
and a long suite (`--tasks all`: hours on 2 cores) resumes benchmark by benchmark after an
interruption. A tuned model is never kept: its weights are the run's own.

lm-eval has a request cache (`use_cache`), but it is keyed by the model's name, which for a
loaded model object is the same for a base and its tuned runs; so the key here is written by
hand from what decides the answers, and lm-eval's cache is given a file of that key's own, where
it writes requests as they are answered: a benchmark stopped half-way resumes there."""

import hashlib
import json
from pathlib import Path

import torch

from tunelab.files import write_whole
from tunelab.models.embedded import cache_root


def model_identity(folder: Path, model, tokenizer) -> str:
    """What decides an unchanged model's answers: its files (path, size, modification time, so
    a re-converted or replaced model is scored anew), how it is loaded (dtype, quantization),
    its tokenizer (vocabulary, chat template) and what it answers to a fixed text (a run's
    model before training is its base wrapped by the method: the same answers where the method
    starts as the identity, LoRA's B = 0, and other ones where it does not, a soft prompt)."""
    files = sorted(
        (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()
    )
    quantization = getattr(model.config, "quantization_config", None)
    parts = [
        str(folder.resolve()),
        files,
        str(next(model.parameters()).dtype),
        quantization.to_dict() if hasattr(quantization, "to_dict") else quantization,
        len(tokenizer),
        getattr(tokenizer, "chat_template", None),
        answers_digest(model, tokenizer),
    ]
    return digest(parts)


@torch.no_grad()
def answers_digest(model, tokenizer) -> str:
    """The next-token scores after a fixed text, to the bit."""
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    training, _ = model.training, model.eval()
    logits = model(input_ids=ids.to(next(model.parameters()).device)).logits[0, -1]
    model.train(training)
    return hashlib.sha256(logits.float().cpu().numpy().tobytes()).hexdigest()[:16]


def digest(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def kept_path(identity: str, benchmark: str, settings_key: list) -> Path:
    return cache_root() / "bench-scores" / f"{benchmark}-{identity}-{digest(settings_key)}.json"


def read_kept(path: Path) -> dict | list | None:
    """What `keep` wrote (a benchmark's figures, or a stopped benchmark's pieces), or None (never
    written, or a damaged file: scored again)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def requests_path(kept: Path) -> Path:
    """Where lm-eval keeps the requests answered so far for the figures that go to `kept` (it adds
    `_rank0.db`): the same model identity and settings, so a resumed benchmark asks the same."""
    return kept.with_suffix("")


def forget_requests(requests: Path) -> None:
    """Once the benchmark's figures are kept its requests are not read again."""
    for db in requests_files(requests):
        db.unlink()
    pieces_path(requests).unlink(missing_ok=True)


def requests_files(requests: Path) -> list[Path]:
    return list(requests.parent.glob(f"{requests.name}_rank*.db"))


def pieces_path(requests: Path) -> Path:
    return requests.with_name(f"{requests.name}_pieces.json")


def seconds_before(requests: Path, now: float) -> float:
    """The seconds earlier pieces of a stopped benchmark took, so a resumed one reports its whole
    time: each piece's start is written when it starts (wall clock, across processes) and a
    stopped piece ended with the last request lm-eval wrote (its file's modification time)."""
    path = pieces_path(requests)
    pieces = read_kept(path) or []
    files = requests_files(requests)
    if pieces and pieces[-1][1] is None:
        last_write = max((f.stat().st_mtime for f in files), default=pieces[-1][0])
        pieces[-1][1] = max(last_write, pieces[-1][0])
    if not files:  # nothing answered is kept: the earlier pieces' time bought nothing
        pieces = []
    keep(path, pieces + [[now, None]])
    return sum(end - start for start, end in pieces)


def keep(path: Path, figures: dict | list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, json.dumps(figures))
