"""What the policy-trained preference tasks (dpo, kto) share: the causal LM policy with its
reference (the adapter switched off for LoRA / QLoRA, a second copy for full weights), and its
metrics on held-out pairs: the implicit reward's accuracy and margin, and answers shown."""

from torch import nn

from tunelab.generation import generate
from tunelab.models.loader import load_causal_lm
from tunelab.tasks.preference.evaluate import dpo_metrics
from tunelab.tasks.preference.pairs import PairTask


def load_policy(task: PairTask) -> tuple[nn.Module, nn.Module | None]:
    """(policy, reference); reference None means the policy with its adapter disabled."""
    trust, path = task.config.model.trust_remote_code, task.run.model_path
    policy = load_causal_lm(path, trust, **task.run.method.options(task.config.method))
    reference = None if task.run.method.artifact == "adapter" else load_causal_lm(path, trust)
    return policy, reference


def policy_metrics(task: PairTask, model: nn.Module, reference: nn.Module | None) -> dict:
    test, config = task.splits["test"], task.config
    prompts = [task.prompt(p) for p in test]
    metrics = dpo_metrics(
        model,
        reference,
        task.tokenizer,
        prompts,
        [p.chosen for p in test],
        [p.rejected for p in test],
        config.task.beta,
        task.add_special_tokens,
        config.eval.batch_size,
    )
    shown = test[: config.eval.examples]
    answers = generate(
        model,
        task.tokenizer,
        prompts[: len(shown)],
        config.eval.max_new_tokens,
        add_special_tokens=task.add_special_tokens,
    )
    metrics["examples"] = [
        {"question": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "answer": a}
        for p, a in zip(shown, answers, strict=True)
    ]
    return metrics
