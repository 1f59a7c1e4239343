"""The decline rows of scripts/make_tools_data.py: a tool-use instruction answered without a call
because none of the functions it is offered does the job (BFCL's irrelevance category asks
exactly that; the shipped pool has almost none). Apart from the pool's readers because they are
written here, not converted."""

import random

VAL_NO_FIT_SHARE = 0.2  # of the validation Seal-Tools rows, copied with functions that do not fit


def names_of(tools: list[dict]) -> set[str]:
    return {tool["function"]["name"] for tool in tools}


def no_fit(rows: list[dict], share: float, rng: random.Random) -> list[dict]:
    """`share` of the (single-turn) Seal-Tools rows again, each offered the functions of another
    of them that shares no name with its own and answered without a call."""
    rows = [row for row in rows if row["source"] == "seal_tools"]
    picked = rng.sample(rows, round(len(rows) * share))
    declined = []
    for row in picked:
        others = rng.choice(rows)["tools"]
        while names_of(others) & names_of(row["tools"]):
            others = rng.choice(rows)["tools"]
        declined.append(decline(row, others, "seal_tools_no_fit"))
    return declined


def near_misses(rows: list[dict]) -> list[dict]:
    """Each Seal-Tools row that makes one call again, offered only the distractors of its own API
    list (same domain, not the function it calls; "getDamCapacity" for a bridge's load capacity)
    and declined: BFCL's irrelevance questions are offered near misses like these (an integral
    for a derivative), which functions of an unrelated row do not teach. A distractor can still
    do the job now and then ("getPsychologicalDisorder" for anxiety disorders): label noise this
    script does not judge. Rows that ask for several things are left out: a distractor may do one."""
    declined = []
    for row in rows:
        calls = row["messages"][1].get("tool_calls", []) if row["source"] == "seal_tools" else []
        if len(calls) != 1:
            continue
        left = [t for t in row["tools"] if t["function"]["name"] != calls[0]["function"]["name"]]
        declined.append(decline(row, left, "seal_tools_near_miss"))
    return declined


def decline(row: dict, offered: list[dict], source: str) -> dict:
    """The row's instruction answered without a call, in glaive's words, naming what is on offer."""
    offer = ", ".join(sorted(names_of(offered)))
    answer = (
        f"I'm sorry, but I can't do that with the functions provided to me: I can only use {offer}."
    )
    messages = [row["messages"][0], {"role": "assistant", "content": answer}]
    return {"source": source, "tools": offered, "messages": messages}
