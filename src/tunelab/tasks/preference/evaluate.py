"""Evaluation of preference tasks: a reward model's pairwise accuracy and margin, and a DPO
policy's implicit-reward accuracy and margin against its reference."""

from contextlib import nullcontext

import torch
from peft import PeftModel

from tunelab.data.lm_encode import IGNORE
from tunelab.progress import track


def batches(items: list, size: int, description: str):
    starts = range(0, len(items), size)
    for start in track(starts, description):
        yield items[start : start + size]


@torch.no_grad()
def reward_scores(model, tokenizer, texts: list[str], batch_size: int = 16) -> torch.Tensor:
    """One scalar per text (the reward head on the last real token)."""
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    scores = torch.empty(len(texts))
    device = next(model.parameters()).device
    for chunk in batches(order, batch_size, "scoring"):
        batch = tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True).to(device)
        scores[chunk] = model(**batch).logits[:, 0].float().cpu()
    return scores


def pairwise_metrics(chosen: torch.Tensor, rejected: torch.Tensor) -> dict:
    """Accuracy counts ties as half right, so an untrained (constant) scorer sits at 0.5."""
    margin = chosen - rejected
    accuracy = ((margin > 0).float() + 0.5 * (margin == 0).float()).mean().item()
    return {"n": len(margin), "accuracy": accuracy, "margin": margin.mean().item()}


def reward_model_metrics(model, tokenizer, pairs: list[tuple[str, str]], batch_size: int) -> dict:
    chosen = reward_scores(model, tokenizer, [c for c, _ in pairs], batch_size)
    rejected = reward_scores(model, tokenizer, [r for _, r in pairs], batch_size)
    return pairwise_metrics(chosen, rejected)


@torch.no_grad()
def response_logps(
    model, tokenizer, prompts, responses, add_special_tokens, batch_size=8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each response given its prompt (EOS included), and its
    token count (ORPO's odds use the mean per token)."""
    rows = []
    for prompt, response in zip(prompts, responses, strict=True):
        head = tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
        tail = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append((head + tail, [IGNORE] * len(head) + tail))
    model.eval()
    device = next(model.parameters()).device
    out = torch.empty(len(rows))
    tokens = torch.tensor([float(len(tail)) for _, tail in rows])
    for chunk in batches(list(range(len(rows))), batch_size, "log-probs"):
        width = max(len(rows[i][0]) for i in chunk)
        ids = torch.full((len(chunk), width), tokenizer.pad_token_id)
        labels = torch.full((len(chunk), width), IGNORE)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, i in enumerate(chunk):
            n = len(rows[i][0])
            ids[j, :n], labels[j, :n], mask[j, :n] = (
                torch.tensor(rows[i][0]),
                torch.tensor(rows[i][1]),
                1,
            )
        logits = (
            model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1].float()
        )
        target = labels[:, 1:].to(device)
        picked = logits.log_softmax(-1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        out[chunk] = (picked * (target != IGNORE)).sum(-1).cpu()
    return out, tokens


def dpo_metrics(
    model, reference, tokenizer, prompts, chosen, rejected, beta, add_special, batch_size
):
    """DPO's implicit reward beta * (log pi - log ref), compared between chosen and rejected.
    `reference` None: the policy with its adapter disabled (LoRA / QLoRA)."""

    def logps(responses):
        policy, tokens = response_logps(
            model, tokenizer, prompts, responses, add_special, batch_size
        )
        # no reference model: the policy with its adapter off (before training: no adapter yet)
        peft = reference is None and isinstance(model, PeftModel)
        context = model.disable_adapter() if peft else nullcontext()
        with context:
            ref, _ = response_logps(
                reference or model, tokenizer, prompts, responses, add_special, batch_size
            )
        return policy, ref, tokens

    (pc, rc, nc), (pr, rr, nr) = logps(chosen), logps(rejected)
    result = pairwise_metrics(beta * (pc - rc), beta * (pr - rr))
    # reference-free: does the policy itself give the chosen answer the higher log-probability,
    # summed (longer answers lose) or per token (ORPO's odds are of the mean)?
    result["policy_accuracy"] = pairwise_metrics(pc, pr)["accuracy"]
    result["policy_accuracy_per_token"] = pairwise_metrics(pc / nc, pr / nr)["accuracy"]
    return result
