"""Shared by the generative-task tests: the real stories260K Llama, a toy Q&A set, config."""

import json
from pathlib import Path

STORIES = str(Path(__file__).parent / "assets" / "stories260K")
# A minimal chat template (the stories tokenizer has none): roles as text, </s> ends a turn.


CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}</s>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


QA = [
    ("What color is the sky?", "The sky is blue."),
    ("What do cats say?", "Cats say meow."),
    ("Where do fish live?", "Fish live in water."),
    ("What is the sun?", "The sun is a star."),
    ("Who likes honey?", "Bears like honey."),
    ("What do cows give?", "Cows give milk."),
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def sft_overrides(tmp_path: Path, method: str, *extra: str) -> list[str]:
    records = [{"question": q, "answer": a, "facts": [a.split()[-1].strip(".")]} for q, a in QA]
    train = write_jsonl(tmp_path / "train.jsonl", records * 4)
    test = write_jsonl(tmp_path / "test.jsonl", records)
    return [
        f"model.name={STORIES}",
        "task.name=sft",
        "task.template=qa",
        f"data.path={train}",
        f"data.test_path={test}",
        "data.split=[0.9,0.1,0.0]",
        f"method.name={method}",
        "train.batch_size=8",
        "train.weight_decay=0.0",
        "eval.max_new_tokens=12",
        f"output.dir={tmp_path / 'run'}",
        *extra,
    ]


ROBOT_STORY = "The red robot number {i} likes to dance with the blue cat. " * 6


def pretrain_overrides(tmp_path: Path, corpus: Path, *extra: str) -> list[str]:
    """LoRA pretraining on stories260K that halves the held-out perplexity of ROBOT_STORY text."""
    return [
        f"model.name={STORIES}",
        "task.name=pretrain",
        f"data.path={corpus}",
        "data.max_length=64",
        "method.name=lora",
        "train.epochs=2",
        "train.lr=0.01",
        f"output.dir={tmp_path / 'run'}",
        *extra,
    ]
