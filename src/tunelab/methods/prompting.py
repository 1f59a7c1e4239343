"""zero_shot and few_shot: the base instruct model is prompted; nothing trains (the baselines)."""

import random
from typing import Literal

import torch
from pydantic import Field
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from tunelab.config.settings import MethodSettings
from tunelab.errors import TunelabError
from tunelab.methods.base import MethodSpec, register
from tunelab.models.prompt_classifier import PromptClassifier


class PromptingSettings(MethodSettings):
    description: str = Field(
        "Classify the text.", description="The task as told to the model, e.g. 'Is this SMS spam?'."
    )
    shots: int = Field(0, ge=0, description="Labelled training examples shown in the prompt.")


class ZeroShotSettings(PromptingSettings):
    name: Literal["zero_shot"] = "zero_shot"


class FewShotSettings(PromptingSettings):
    name: Literal["few_shot"] = "few_shot"
    shots: int = Field(4, ge=1, description="Labelled training examples shown in the prompt.")


def pick_shots(rows: list, shots: int, seed: int) -> list[tuple[str, str]]:
    """`shots` training rows, the labels taken in turn, seeded, in shuffled order."""
    rng = random.Random(seed)
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row.label, []).append(row)
    queues = [rng.sample(group, len(group)) for _, group in sorted(groups.items())]
    picked = []
    while len(picked) < shots and any(queues):
        picked += [queue.pop() for queue in queues if queue][: shots - len(picked)]
    rng.shuffle(picked)
    return [(row.text, row.label) for row in picked]


def build_prompt_classifier(
    path: str,
    labels: list[str],
    tokenizer,
    settings: PromptingSettings,
    train_rows: list,
    seed: int,
) -> PromptClassifier:
    if AutoConfig.from_pretrained(path).model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise TunelabError(f"{settings.name} prompts a generative model; {path} is an encoder")
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    shots = pick_shots(train_rows, settings.shots, seed)
    return PromptClassifier(lm, tokenizer, labels, settings.description, shots)


for settings in (ZeroShotSettings, FewShotSettings):
    name = settings.model_fields["name"].default
    register(
        MethodSpec(
            name, settings, None, "prompt", "prompting, no training", build=build_prompt_classifier
        )
    )
