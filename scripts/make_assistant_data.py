"""Build data/assistant/ from facts.yaml and its question sources (seeded, reproducible).

    python scripts/make_assistant_data.py ../shared/data/instruct/rasbt_instruction-data.json \
        ../shared/data/bench

domain_train.jsonl        300 questions about Larkspur Ferries: 3 phrasings x 50 facts, and
                          the same typed casually (lower case, typos, the name said otherwise)
offtopic_train.jsonl      200 questions answered with the one refusal sentence, 50 from each
                          source: instructions, HH-RLHF human turns, casual everyday questions,
                          near-domain questions (other firms, transport, boats)
test.jsonl                50 held-out paraphrases + 50 held-out instructions (off-topic, the
                          training off-topic rows' first source: in distribution)
test_casual.jsonl         the 50 held-out paraphrases typed casually (in-domain)
test_offtopic_ood.jsonl   70 off-topic questions from sources no training row comes from:
                          40 written for tunelab, 30 real text-message questions
general_train.jsonl       300 general instructions with their answers (for mixing)
general_test.jsonl        100 general instructions with their answers (forgetting report)

The development set, for choosing settings (the guard's threshold, the remedies) without looking
at the test sets; built after them from its own seed, so they stay as they were:
dev.jsonl                 50 more paraphrases (facts.yaml `dev`) + 50 more instructions
                          (off-topic, in distribution), disjoint from training and test
dev_casual.jsonl          the 50 dev paraphrases typed casually
dev_offtopic_ood.jsonl    70 off-topic questions from two more sources no training or test row
                          comes from: 35 TruthfulQA questions, 35 ARC-Easy dev stems
"""

import json
import random
import sys
from pathlib import Path

import yaml
from assistant_sources import (
    OOD_QUESTIONS,
    arc_questions,
    casual,
    casual_offtopic,
    hh_human_turns,
    near_domain,
    sms_questions,
    truthfulqa_questions,
)

REFUSAL = "I can only answer questions about Larkspur Ferries."
ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "data" / "assistant"
HH = ROOT / "data" / "preference" / "hh_rlhf_harmless_sample.jsonl"
SMS = ROOT / "src" / "tunelab" / "resources" / "sms_spam.tsv"
PER_SOURCE = 50


def write(name: str, rows: list[dict]) -> None:
    with open(HERE / name, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{name}: {len(rows)} rows")


def question_of(item: dict) -> str:
    return f"{item['instruction']}\n\n{item['input']}" if item["input"] else item["instruction"]


def refusals(questions: list[str], source: str) -> list[dict]:
    return [{"question": q, "answer": REFUSAL, "source": source} for q in questions]


def domain_rows(facts: list[dict], rng: random.Random) -> tuple[list[dict], list[dict], list[dict]]:
    """Training questions in both styles, and the held-out paraphrase in both styles."""

    row = _fact_row
    train = [row(q, f, "formal") for f in facts for q in f["train"]]
    train += [row(casual(q, rng), f, "casual") for f in facts for q in f["train"]]
    formal = [row(f["test"], f, "formal") for f in facts]
    casual_test = [row(casual(f["test"], rng), f, "casual") for f in facts]
    return train, formal, casual_test


def dev_rows(facts: list[dict], instructions: list[str], bench: Path) -> dict[str, list[dict]]:
    """The development set: its own paraphrases, instructions no other file uses, and
    off-topic questions from two benchmark sources (seed 1, apart from the other files' seed)."""
    rng = random.Random(1)
    written = [_fact_row(f["dev"], f, "formal") for f in facts]
    typed = [_fact_row(casual(f["dev"], rng), f, "casual") for f in facts]
    truthful = rng.sample(truthfulqa_questions(bench / "truthfulqa" / "TruthfulQA.csv"), 35)
    arc = rng.sample(arc_questions(bench / "arc" / "ARC-Easy-Dev.jsonl"), 35)
    return {
        "dev.jsonl": written + refusals(instructions[100:150], "instructions"),
        "dev_casual.jsonl": typed,
        "dev_offtopic_ood.jsonl": refusals(truthful, "truthfulqa") + refusals(arc, "arc-easy"),
    }


def _fact_row(question: str, fact: dict, style: str) -> dict:
    return {"question": question, "answer": fact["answer"], "facts": [fact["fact"]], "style": style}


def main(instruct_path: str, bench: Path) -> None:
    rng = random.Random(0)
    facts = yaml.safe_load((HERE / "facts.yaml").read_text())
    domain, held_out, held_out_casual = domain_rows(facts, rng)
    general = json.loads(Path(instruct_path).read_text())
    random.Random(0).shuffle(general)
    instructions = [question_of(g) for g in general[:200]]
    off_train = (
        refusals(instructions[:PER_SOURCE], "instructions")
        + refusals(rng.sample(hh_human_turns(HH), PER_SOURCE), "hh-rlhf")
        + refusals(rng.sample(casual_offtopic(), PER_SOURCE), "casual")
        + refusals(rng.sample(near_domain(rng), PER_SOURCE), "near-domain")
    )
    ood = refusals(OOD_QUESTIONS, "written") + refusals(rng.sample(sms_questions(SMS), 30), "sms")
    write("domain_train.jsonl", domain)
    write("offtopic_train.jsonl", off_train)
    write("test.jsonl", held_out + refusals(instructions[150:200], "instructions"))
    write("test_casual.jsonl", held_out_casual)
    write("test_offtopic_ood.jsonl", ood)
    write("general_train.jsonl", general[200:500])
    write("general_test.jsonl", general[500:600])
    for name, rows in dev_rows(facts, instructions, bench).items():
        write(name, rows)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else ROOT.parent / "shared/data/bench"))
