"""A generative run's GGUF exports checked in llama.cpp, against tunelab's own answers.

For f16, q8_0 and q4_k_m: the export (`tunelab export --format ollama`), llama.cpp's greedy
answers to the run's held-out questions (its eval_after.json), how many equal the answers of
the merged model in Transformers (fp32, tunelab's `generate`), the assistant's scores (key facts,
refusals, false refusals) and llama.cpp's generated tokens/s (one question at a time).

    python benchmarks/gguf_check.py runs/assistant_smollm2_qlora --questions 100
Prints a table and writes benchmarks/results/gguf_check.json (needs `make llama`).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from llama_cpp import Llama

from tunelab.data.templates import generation_prompt
from tunelab.export.gguf import export_gguf
from tunelab.export.hf import export_run
from tunelab.generation import generate
from tunelab.hardware import write_measurement  # noqa: E402
from tunelab.models.loader import load_tokenizer
from tunelab.run_record import read_record
from tunelab.tasks.generative.evaluate import fact_hits, is_refusal, mean

RESULTS = Path(__file__).resolve().parent / "results"


def scores(rows: list[dict], answers: list[str], refusal: str | None) -> dict:
    off = [bool(refusal) and is_refusal(r["reference"], refusal) for r in rows]
    refused = [bool(refusal) and is_refusal(a, refusal) for a in answers]
    hits = [fact_hits(a, r["facts"]) for r, a, o in zip(rows, answers, off, strict=True) if not o]
    return {
        "key_fact_hit_rate": mean([h for h in hits if h is not None]),
        "refusal_rate": mean([float(x) for x, o in zip(refused, off, strict=True) if o]),
        "false_refusal_rate": mean([float(x) for x, o in zip(refused, off, strict=True) if not o]),
    }


def llama_answers(gguf: Path, prompt_ids: list[list[int]], max_tokens: int, eos: int, tok):
    llm = Llama(model_path=str(gguf), n_ctx=2048, verbose=False)
    stops = {eos, llm.token_eos()}
    answers, tokens, start = [], 0, time.perf_counter()
    for ids in prompt_ids:
        out = []
        for token in llm.generate(ids, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
            if token in stops or len(out) >= max_tokens:
                break
            out.append(token)
        tokens += len(out)
        answers.append(tok.decode(out, skip_special_tokens=True).strip())
    return answers, tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--questions", type=int, default=100)
    args = parser.parse_args()
    record = read_record(args.run_dir)
    rows = json.loads((args.run_dir / "eval_after.json").read_text())["answers"][: args.questions]
    tokenizer = load_tokenizer(str(args.run_dir / record.artifact))
    prompts = [
        generation_prompt(
            [{"role": "user", "content": r["question"]}], record.template, tokenizer, record.system
        )
        for r in rows
    ]
    chat = record.template == "chat"
    prompt_ids = [tokenizer(p, add_special_tokens=not chat)["input_ids"] for p in prompts]
    refusal = record.task_settings.get("refusal")
    with tempfile.TemporaryDirectory() as scratch:
        from transformers import AutoModelForCausalLM

        merged = export_run(args.run_dir, Path(scratch) / "hf", merge=True)
        model = AutoModelForCausalLM.from_pretrained(merged)
        start = time.perf_counter()
        ours = generate(model, tokenizer, prompts, record.max_new_tokens, 16, not chat)
        ours_s = time.perf_counter() - start
    report = {
        "run": str(args.run_dir),
        "questions": len(rows),
        "tunelab_fp32": {**scores(rows, ours, refusal), "seconds": ours_s},
    }
    for quant in ("f16", "q8_0", "q4_k_m"):
        folder = args.run_dir / "gguf" / quant
        found = sorted(folder.glob("*.gguf")) if folder.is_dir() else []
        gguf = found[0] if found else export_gguf(args.run_dir, folder, quant, ollama=True)
        answers, tokens_per_s = llama_answers(
            gguf, prompt_ids, record.max_new_tokens, tokenizer.eos_token_id, tokenizer
        )
        report[f"llama.cpp_{quant}"] = {
            **scores(rows, answers, refusal),
            "equal_to_tunelab": sum(a == b for a, b in zip(answers, ours, strict=True)),
            "tokens_per_s": tokens_per_s,
            "size_mb": gguf.stat().st_size / 2**20,
            "examples": [
                {"question": r["question"], "answer": a}
                for r, a in list(zip(rows, answers, strict=True))[:3]
            ],
        }
    print(
        f"\n{'':18} {'key facts':>10} {'refusals':>9} {'false ref.':>10} {'= tunelab':>10} "
        f"{'tokens/s':>9} {'MB':>7}"
    )
    for side, f in report.items():
        if isinstance(f, dict):
            equal = f.get("equal_to_tunelab", "-")
            print(
                f"{side:18} {f['key_fact_hit_rate']:10.2f} {f['refusal_rate'] or 0:9.2f} "
                f"{f['false_refusal_rate'] or 0:10.2f} {equal!s:>10} "
                f"{f.get('tokens_per_s', 0):9.1f} {f.get('size_mb', 0):7.1f}"
            )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "gguf_check.json"
    write_measurement(out, report, ensure_ascii=False)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
