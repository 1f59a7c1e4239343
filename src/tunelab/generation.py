"""Batched text generation with a run's template and stop rule (EOS)."""

import torch
from transformers import PreTrainedTokenizerBase

from tunelab.errors import TunelabError
from tunelab.progress import track

MIN_TEMPERATURE = 1e-4  # below it, sampling is greedy decoding (the temperature's limit)


def context_of(model: torch.nn.Module) -> int | None:
    """The longest sequence (prompt + answer) the model was built for, where its config says."""
    config = getattr(model, "config", None)
    size = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return int(size) if size else None


def answer_room(model: torch.nn.Module, prompt_tokens: int, max_new_tokens: int) -> int:
    """max_new_tokens, cut to what the model's context leaves after the prompt (asking 100,000
    ran until the process was killed). A prompt already past the context (a long benchmark
    question on a tiny model) keeps the old behaviour; `generate` and `chat` refuse it first."""
    context = context_of(model)
    if context is None or prompt_tokens >= context:
        return max_new_tokens
    return min(max_new_tokens, context - prompt_tokens)


def check_fits(model: torch.nn.Module, prompt_tokens: int) -> None:
    """A prompt that fills the model's context: one line (the command line asks this)."""
    context = context_of(model)
    if context is not None and prompt_tokens >= context:
        raise TunelabError(
            f"a prompt of {prompt_tokens} tokens fills the model's context of {context} tokens; "
            "shorten it"
        )


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int = 64,
    batch_size: int = 8,
    add_special_tokens: bool = True,
    temperature: float = 0.0,
    top_p: float = 1.0,
    streamer=None,
    description: str | None = None,
    banned_opening: int | None = None,
) -> list[str]:
    """Answers in the order of `prompts`; greedy when temperature is 0. Prompts are batched by
    length and left-padded, so every row's answer starts right after its own prompt.
    `banned_opening`: a token no answer may start with (the refusal's, when the scope guard has
    already let the question through)."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[str] = [""] * len(prompts)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
    if temperature < MIN_TEMPERATURE:  # its limit: at 1e-30 the softmax overflows to NaN
        sampling = {"do_sample": False}
    if banned_opening is not None:  # Transformers' own logits processor, applied at step one
        sampling["begin_suppress_tokens"] = [banned_opening]
    starts = range(0, len(order), batch_size)
    if description:  # a progress bar for long evaluations; none for chat
        starts = track(starts, description)
    try:
        for start in starts:
            chunk = order[start : start + batch_size]
            batch = tokenizer(
                [prompts[i] for i in chunk],
                return_tensors="pt",
                padding=True,
                add_special_tokens=add_special_tokens,
            ).to(next(model.parameters()).device)
            room = answer_room(model, batch["input_ids"].shape[1], max_new_tokens)
            output = model.generate(
                **batch,
                max_new_tokens=room,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                streamer=streamer,
                **sampling,
            )
            new = output[:, batch["input_ids"].shape[1] :]
            for i, text in zip(
                chunk, tokenizer.batch_decode(new, skip_special_tokens=True), strict=True
            ):
                answers[i] = text.strip()
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return answers
