"""The question sources of the seed-003 assistant data beyond the instruction set: casual
rephrasings of the company questions, templated casual and near-domain off-topic questions for
training, and the out-of-distribution off-topic questions kept for testing only (hand-written
for tunelab, plus real text-message questions). Used by make_assistant_data.py."""

import csv
import json
import random
import re
from pathlib import Path

NAME_VARIANTS = ["larkspur", "Larkspur", "larkspur ferries", "Larkspur ferry", "LARKSPUR"]

# Training only: casual everyday questions, built from frames x topics (written for tunelab).
CASUAL_FRAMES = [
    "hey quick q, {}",
    "{}",
    "any idea {}",
    "can u tell me {}",
    "so {}",
]
CASUAL_TOPICS = [
    "whats the weather gonna be like tomorrow?",
    "how do i get red wine out of a carpet?",
    "what's a good name for a cat?",
    "is it bad to drink coffee at night?",
    "how many calories in a banana?",
    "who won the world cup in 2014?",
    "how do i reset my wifi router?",
    "what should i cook for dinner tonight?",
    "how long do you boil an egg?",
    "whats the capital of australia?",
    "can dogs eat grapes?",
    "how do i make my phone battery last longer?",
    "what's the best way to learn guitar?",
    "why is the sky blue?",
    "how much water should i drink a day?",
    "what time is it in tokyo right now?",
    "is it going to snow this weekend?",
    "how do you get rid of hiccups?",
    "what's a good movie to watch tonight?",
    "how tall is mount everest?",
]
# Training only: questions close to the domain but about other firms, transport and boats.
OTHER_FIRMS = ["Bluewater Ferries", "Northstar Rail", "CityLink Buses", "Harbor Air", "Seagull Cruises"]
NEAR_FRAMES = [
    "How much is a ticket with {firm}?",
    "Does {firm} allow dogs on board?",
    "what time does the first {firm} departure leave?",
    "Who is the chief executive of {firm}?",
    "Can I get a refund from {firm} if I miss my trip?",
    "how do i book a seat with {firm}",
    "Where is the head office of {firm}?",
    "Is there wifi on {firm}?",
    "what is the cheapest way to travel from {a} to {b}?",
    "How long does the train from {a} to {b} take?",
    "What's the best sailing boat for a beginner?",
    "how do i get a boating licence?",
]
CITIES = ["Leeds", "Lyon", "Porto", "Oslo", "Boston", "Osaka", "Dublin", "Seville"]

# Testing only: questions a new user might ask, written for tunelab in other words and topics
# than the training templates (no frame, topic or firm above is reused).
OOD_QUESTIONS = [
    "Who painted the Mona Lisa?",
    "how much is a bus ticket in Glasgow",
    "Will it rain in Paris on Saturday?",
    "What's the fastest land animal?",
    "i have a headache, what should i take?",
    "Can you book me a table for two at an Italian restaurant?",
    "What are the visa rules for visiting Canada?",
    "Does Stena Line take bikes on the Holyhead crossing?",
    "what's the timetable for the Staten Island Ferry?",
    "How much does the Eurostar cost from London to Brussels?",
    "Is Ryanair's cabin bag allowance 10 kg?",
    "who wrote pride and prejudice",
    "How many bones are in the human body?",
    "whats a good recipe for banana bread",
    "Which planet is closest to the sun?",
    "How do I renew my passport?",
    "can u recommend a hotel near the airport",
    "What is the boiling point of water at altitude?",
    "How do I treat a sprained ankle?",
    "When does daylight saving time start?",
    "Who is the prime minister of Japan?",
    "What's the exchange rate from euros to dollars?",
    "how do you tie a bowline knot",
    "How fast can a container ship go?",
    "What does a harbour master do?",
    "is the metro open all night in berlin?",
    "What is the tallest building in the world?",
    "Do I need a car seat for a taxi with a toddler?",
    "how long is the flight from madrid to new york",
    "What are the symptoms of seasickness?",
    "Can you help me write a birthday message for my mum?",
    "What's the score in the football tonight?",
    "How many players are on a rugby team?",
    "where can i park near the train station in York?",
    "What does BC Ferries charge for a car?",
    "Which whales can you see off the coast of Iceland?",
    "how do i cancel my gym membership",
    "What is photosynthesis?",
    "Recommend a podcast about history.",
    "Is it safe to swim after eating?",
]


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
            words[i] = word[:j] + word[j + 1 :] if rng.random() < 0.5 else word[:j] + word[j] + word[j:]
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
