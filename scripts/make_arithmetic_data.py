"""Build data/arithmetic/: small word problems whose answers are computed, so a program can check
a completion (exact-match reward for grpo / rloo). Seeded and reproducible:

    python scripts/make_arithmetic_data.py            # seed 0

train.jsonl   1,000 problems: {"prompt", "answer", "kind"}
test.jsonl      200 problems, none of whose prompts is in train.jsonl

Kinds: plain sums and differences of two-digit numbers, products of one-digit by two-digit
numbers, and one-step word problems (items bought, given away, shared out) in several wordings.
The `exact_number` reward takes the last number of a completion as its answer.
"""

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "data" / "arithmetic"
NAMES = ["Ada", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivo", "Jun"]
ITEMS = ["apples", "stamps", "marbles", "books", "shells", "cards", "coins", "pencils"]

Problem = tuple[str, int]


def plain_sum(rng: random.Random) -> Problem:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return f"What is {a} + {b}?", a + b


def plain_difference(rng: random.Random) -> Problem:
    a, b = sorted((rng.randint(10, 99), rng.randint(10, 99)), reverse=True)
    return f"What is {a} - {b}?", a - b


def plain_product(rng: random.Random) -> Problem:
    a, b = rng.randint(2, 9), rng.randint(11, 60)
    return f"What is {a} times {b}?", a * b


def bought_more(rng: random.Random) -> Problem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(5, 60), rng.randint(5, 40)
    return f"{name} has {a} {item} and buys {b} more. How many {item} does {name} have now?", a + b


def gave_away(rng: random.Random) -> Problem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a = rng.randint(20, 90)
    b = rng.randint(1, a - 1)
    return f"{name} had {a} {item} and gave {b} away. How many {item} are left?", a - b


def boxes_of(rng: random.Random) -> Problem:
    item = rng.choice(ITEMS)
    boxes, each = rng.randint(2, 9), rng.randint(3, 12)
    return f"There are {boxes} boxes with {each} {item} in each. How many {item} in all?", (
        boxes * each
    )


KINDS: dict[str, Callable[[random.Random], Problem]] = {
    "sum": plain_sum,
    "difference": plain_difference,
    "product": plain_product,
    "bought_more": bought_more,
    "gave_away": gave_away,
    "boxes": boxes_of,
}


def problems(count: int, rng: random.Random, taken: set[str]) -> list[dict]:
    """`count` distinct problems, kinds in turn, none of whose prompt is in `taken`."""
    rows, kinds, tries = [], list(KINDS), 0
    while len(rows) < count:
        tries += 1
        if tries > 100 * count:  # a kind with too few distinct problems for `count`
            raise SystemExit(f"only {len(rows)} distinct problems found; widen the ranges")
        kind = kinds[len(rows) % len(kinds)]
        question, answer = KINDS[kind](rng)
        if question in taken:
            continue
        taken.add(question)
        rows.append({"prompt": question, "answer": str(answer), "kind": kind})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def main(seed: int = 0) -> None:
    rng, taken = random.Random(seed), set()
    HERE.mkdir(parents=True, exist_ok=True)
    test = problems(200, rng, taken)  # drawn first: the test set does not depend on train's size
    write_jsonl(HERE / "test.jsonl", test)
    write_jsonl(HERE / "train.jsonl", problems(1000, rng, taken))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
