"""The question sources of the seed-003 assistant data beyond the instruction set: casual
rephrasings of the company questions, templated casual and near-domain off-topic questions for
training, and the out-of-distribution off-topic questions kept for testing only (hand-written
for tunelab, plus real text-message questions). Used by make_assistant_data.py."""

import csv
import json
import random
import re
from pathlib import Path

import yaml

SOURCES = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "data/assistant/question_sources.yaml").read_text()
)
NAME_VARIANTS = SOURCES["name_variants"]
CASUAL_FRAMES, CASUAL_TOPICS = SOURCES["casual_frames"], SOURCES["casual_topics"]
OTHER_FIRMS, NEAR_FRAMES, CITIES = SOURCES["other_firms"], SOURCES["near_frames"], SOURCES["cities"]
OOD_QUESTIONS = SOURCES["ood_questions"]


def casual(question: str, rng: random.Random) -> str:
    """The same question as typed on a phone: lower case, no final punctuation sometimes, the
    company named another way, and a dropped or doubled letter now and then."""
    text = question.replace("Larkspur Ferries", rng.choice(NAME_VARIANTS))
    text = text.lower() if rng.random() < 0.8 else text
    text = text.rstrip("?.") if rng.random() < 0.5 else text
    words = text.split()
    for _ in range(rng.choice([0, 1, 1, 2])):
        i = rng.randrange(len(words))
        word = words[i]
        if len(word) > 4 and word.isalpha():
            j = rng.randrange(1, len(word) - 1)
            words[i] = (
                word[:j] + word[j + 1 :] if rng.random() < 0.5 else word[:j] + word[j] + word[j:]
            )
    return " ".join(words)


def casual_offtopic() -> list[str]:
    return [frame.format(topic) for topic in CASUAL_TOPICS for frame in CASUAL_FRAMES]


def near_domain(rng: random.Random) -> list[str]:
    """Each firm in every frame that names one; four city pairs in those that name cities."""
    questions = []
    for frame in NEAR_FRAMES:
        for firm in OTHER_FIRMS:
            a, b = rng.sample(CITIES, 2)
            questions.append(frame.format(firm=firm, a=a, b=b))
    return list(dict.fromkeys(questions))


def hh_human_turns(path: Path) -> list[str]:
    """The first human turn of each HH-RLHF conversation, when short and single-line."""
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        prompt = json.loads(line)["prompt"]
        first = prompt.split("\n\nHuman: ")[1].split("\n\nAssistant:")[0].strip()
        if 10 <= len(first) <= 160 and "\n" not in first:
            turns.append(first)
    return list(dict.fromkeys(turns))


def sms_questions(path: Path) -> list[str]:
    """Real text messages (UCI SMS Spam Collection, ham) that ask something: chat-style
    questions from a source no training row comes from."""
    found = []
    with path.open(encoding="utf-8") as handle:
        for label, text in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            text = re.sub(r"\s+", " ", text).strip()
            if label == "ham" and text.endswith("?") and 15 <= len(text) <= 120:
                found.append(text)
    return list(dict.fromkeys(found))


# Words that would make a benchmark question about ferries, boats or the company: such a question
# is not clearly off-topic for a ferry assistant, so the development set leaves it out.
NEAR_DOMAIN_WORDS = ("ferr", "boat", "ship", "larkspur", "lake", "harbo", "sail")
# ARC stems that only make sense with their answer choices shown.
NEEDS_CHOICES = ("following", "these", "which statement", "diagram", "table", "best", "most likely")


def plain_question(text: str) -> bool:
    lowered = text.lower()
    return (
        15 <= len(text) <= 140
        and text.endswith("?")
        and not any(w in lowered for w in NEAR_DOMAIN_WORDS + NEEDS_CHOICES)
    )


def truthfulqa_questions(path: Path) -> list[str]:
    """TruthfulQA's questions (Lin et al. 2022, Apache-2.0): everyday questions people get wrong,
    a source no training or test row comes from (the development set's off-topic part)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        questions = [row["Question"].strip() for row in csv.DictReader(handle)]
    return list(dict.fromkeys(q for q in questions if plain_question(q)))


def arc_questions(path: Path) -> list[str]:
    """ARC-Easy dev question stems (Clark et al. 2018, CC BY-SA 4.0) that read as questions
    without their choices: school science, another source no training or test row comes from."""
    stems = [json.loads(line)["question"]["stem"].strip() for line in path.open(encoding="utf-8")]
    return list(dict.fromkeys(s for s in stems if plain_question(s)))
