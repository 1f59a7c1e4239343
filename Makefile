# The README's commands; CI runs `make test` through .ci/run.
.PHONY: setup demo test lint format rlhf bench llama tools-data

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/tunelab train configs/spam_smollm2_freeze.yaml --resume

test: setup lint
	.venv/bin/python -m pytest -q

# llama-cpp-python built from its source package (GGUF checks, q4_k_m, serving through llama.cpp).
llama: setup
	bash scripts/llama_cpp.sh engine

lint:
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks

format:
	.venv/bin/ruff format src tests benchmarks
	.venv/bin/ruff check --fix src tests benchmarks

# Seed 001's three RLHF steps on the embedded model: SFT, reward model, PPO (about 30 min on 2 CPU cores).
# The shipped tool-use pool as chat rows with tools (configs/tools_smollm2.yaml reads them).
tools-data: setup
	.venv/bin/python scripts/make_tools_data.py ../shared/data/tools/train data/tools

rlhf: setup
	.venv/bin/tunelab compare configs/rlhf_smollm2.yaml

# Issue 6's four cases against a plain Trainer + PEFT script, one after the other (about 45 min on
# 2 CPU cores); each prints a table and writes benchmarks/results/<case>.json (docs/performance.md).
bench: setup
	.venv/bin/python benchmarks/spam_freeze.py --epochs 4 --limit-train 400
	.venv/bin/python benchmarks/imdb_lora.py
	.venv/bin/python benchmarks/sft_lora.py --method lora
	.venv/bin/python benchmarks/sft_lora.py --method qlora
