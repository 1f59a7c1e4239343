"""Classification by prompting an instruct model: no new head, no training (in-context learning).

Each label is scored by the log-probability of its words as the assistant's answer; a softmax
over the labels gives probabilities, so prompting is evaluated exactly like trained methods."""

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_outputs import SequenceClassifierOutput

PLACEHOLDER = "\x00TEXT\x00"


def chat_prompt(
    tokenizer, description: str, labels: list[str], shots: list[tuple[str, str]]
) -> str:
    """The whole conversation with PLACEHOLDER where the text goes, ending where the answer
    starts."""
    instruction = f"{description}\nAnswer with exactly one of: {', '.join(labels)}."
    messages = [{"role": "system", "content": instruction}]
    for text, label in shots:
        messages += [
            {"role": "user", "content": f"Text: {text}"},
            {"role": "assistant", "content": label},
        ]
    messages.append({"role": "user", "content": f"Text: {PLACEHOLDER}"})
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    turns = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join(turns) + "\nassistant:"


class PromptClassifier(nn.Module):
    def __init__(
        self,
        lm: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        labels: list[str],
        description: str,
        shots: list[tuple[str, str]],
    ):
        super().__init__()
        self.lm = lm.requires_grad_(False).eval()  # prompting trains nothing
        self.config = lm.config
        self.description, self.shots = description, shots
        prefix, suffix = chat_prompt(tokenizer, description, labels, shots).split(PLACEHOLDER)
        encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
        self.prefix, self.suffix = encode(prefix), encode(suffix)
        self.answers = [encode(label) for label in labels]
        self.special = set(tokenizer.all_special_ids)
        self.pad_id = tokenizer.pad_token_id

    def sequences(self, input_ids, attention_mask) -> tuple[list[list[int]], list[int]]:
        """For every row and label: prompt + text + answer, and where the answer starts."""
        sequences, starts = [], []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
            text = [t for t, m in zip(ids, mask, strict=True) if m and t not in self.special]
            context = self.prefix + text + self.suffix
            for answer in self.answers:
                sequences.append(context + answer)
                starts.append(len(context))
        return sequences, starts

    def forward(self, input_ids, attention_mask, labels=None, **_) -> SequenceClassifierOutput:
        sequences, starts = self.sequences(input_ids, attention_mask)
        width = max(map(len, sequences))
        # Left padding puts every answer at the end, so the vocabulary projection runs on the
        # last few positions only (logits_to_keep) instead of the whole prompt.
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, seq in enumerate(sequences):
            ids[i, width - len(seq) :], mask[i, width - len(seq) :] = torch.tensor(seq), 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        keep = max(len(seq) - start for seq, start in zip(sequences, starts, strict=True)) + 1
        out = self.lm(
            input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep
        )
        log_probs = out.logits.float().log_softmax(-1)
        scores = []
        for i, (seq, start) in enumerate(zip(sequences, starts, strict=True)):
            answer = len(seq) - start  # its tokens are the last `answer` ids of row i
            predicted_by = log_probs[i, keep - answer - 1 : keep - 1]
            scores.append(predicted_by.gather(-1, ids[i, width - answer :, None]).sum())
        logits = torch.stack(scores).view(len(input_ids), len(self.answers))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)
