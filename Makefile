# The README's commands; CI runs `make test` through .ci/run.
.PHONY: setup demo test lint format rlhf

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/tunelab train configs/spam_smollm2_freeze.yaml --resume

test: setup lint
	.venv/bin/python -m pytest -q

lint:
	.venv/bin/ruff check src tests
	.venv/bin/ruff format --check src tests

format:
	.venv/bin/ruff format src tests
	.venv/bin/ruff check --fix src tests

# Seed 001's three RLHF steps on the embedded model: SFT, reward model, PPO (about 30 min on 2 CPU cores).
rlhf: setup
	.venv/bin/tunelab compare configs/rlhf_smollm2.yaml
