"""Build data/assistant/ from facts.yaml and the rasbt instruction set (seeded, reproducible).

    python scripts/make_assistant_data.py ../shared/data/instruct/rasbt_instruction-data.json

domain_train.jsonl   150 questions about Larkspur Ferries (3 phrasings x 50 facts)
offtopic_train.jsonl 150 general instructions answered with the one refusal sentence
test.jsonl           50 held-out paraphrases + 50 held-out off-topic questions
general_train.jsonl  300 general instructions with their answers (for mixing)
general_test.jsonl   100 general instructions with their answers (forgetting report)
"""

import json
import random
import sys
from pathlib import Path

import yaml

REFUSAL = "I can only answer questions about Larkspur Ferries."
HERE = Path(__file__).resolve().parents[1] / "data" / "assistant"


def write(name: str, rows: list[dict]) -> None:
    with open(HERE / name, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{name}: {len(rows)} rows")


def question_of(item: dict) -> str:
    return f"{item['instruction']}\n\n{item['input']}" if item["input"] else item["instruction"]


def main(instruct_path: str) -> None:
    facts = yaml.safe_load((HERE / "facts.yaml").read_text())
    domain = [
        {"question": q, "answer": f["answer"], "facts": [f["fact"]]}
        for f in facts
        for q in f["train"]
    ]
    held_out = [{"question": f["test"], "answer": f["answer"], "facts": [f["fact"]]} for f in facts]
    general = json.loads(Path(instruct_path).read_text())
    random.Random(0).shuffle(general)
    refuse = [{"question": question_of(g), "answer": REFUSAL} for g in general[:200]]
    write("domain_train.jsonl", domain)
    write("offtopic_train.jsonl", refuse[:150])
    write("test.jsonl", held_out + refuse[150:200])
    write("general_train.jsonl", general[200:500])
    write("general_test.jsonl", general[500:600])


if __name__ == "__main__":
    main(sys.argv[1])
