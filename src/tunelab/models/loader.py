"""Load a pretrained backbone with a new classification head, and its tokenizer."""

import re

import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from tunelab.errors import TunelabError
from tunelab.models.mean_pooling import MeanPoolingClassifier

# The load report ("score.weight MISSING ... newly initialized") is expected for a new head.
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


# a weight of a numbered transformer block (Llama layers.N, GPT-2 h.N, BERT layer.N, T5 block.N)
BLOCK_WEIGHT = re.compile(r"(^|\.)(layers|h|layer|block|blocks)\.\d+\.")


def loaded(path: str, load, **kwargs):
    """`load(path, ...)` with the checkpoint's unused weights checked: a config.json declaring
    fewer blocks than the weights hold trained a smaller model without a word."""
    model, info = load(path, output_loading_info=True, **kwargs)
    unused = [key for key in info.get("unexpected_keys", []) if BLOCK_WEIGHT.search(key)]
    if unused:
        raise TunelabError(
            f"{path}: its weights hold transformer blocks its config.json does not declare "
            f"(first unused: {sorted(unused)[0]}); the config's layer count is smaller than the "
            "weights'"
        )
    return model


def load_tokenizer(path: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise TunelabError(f"cannot load a tokenizer from {path}: {exc}".splitlines()[0]) from None
    if tokenizer.pad_token is None:
        # Decoder tokenizers (GPT-2, Llama) have no pad token; padding is masked out anyway.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_classifier(
    path: str,
    labels: list[str],
    tokenizer: PreTrainedTokenizerBase,
    trust_remote_code: bool = False,
    mean_pooling: bool = False,
    **options,
) -> PreTrainedModel | MeanPoolingClassifier:
    """The backbone's weights plus a freshly initialised head with one output per label."""
    label_maps = {
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }
    common = {"dtype": torch.float32, "trust_remote_code": trust_remote_code, **options}
    try:
        if mean_pooling:
            backbone = loaded(path, AutoModel.from_pretrained, **label_maps, **common)
            model = MeanPoolingClassifier(backbone, len(labels))
        else:
            model = loaded(
                path,
                AutoModelForSequenceClassification.from_pretrained,
                num_labels=len(labels),
                pad_token_id=tokenizer.pad_token_id,
                **label_maps,
                **common,
            )
    except (OSError, ValueError) as exc:
        raise TunelabError(f"cannot load model {path}: {str(exc).splitlines()[0]}") from None
    # Decoders pool the last non-padding token, found through pad_token_id.
    model.config.pad_token_id = tokenizer.pad_token_id
    if "quantization_config" in options:
        keep_4bit_weights_trainable(model)
    return model


def load_causal_lm(path: str, trust_remote_code: bool = False, **options) -> PreTrainedModel:
    """A pretrained causal LM with its own LM head (sft, pretrain, generation)."""
    common = {"dtype": torch.float32, "trust_remote_code": trust_remote_code, **options}
    try:
        model = loaded(path, AutoModelForCausalLM.from_pretrained, **common)
    except (OSError, ValueError) as exc:
        raise TunelabError(f"cannot load model {path}: {str(exc).splitlines()[0]}") from None
    if "quantization_config" in options:
        keep_4bit_weights_trainable(model)
    return model


def keep_4bit_weights_trainable(model: torch.nn.Module) -> None:
    """bitsandbytes repacks 4-bit weights for a CPU inference kernel the first time a layer runs
    in eval mode (our before-training evaluation); training through that kernel then fails.
    Its own switch turns the repacking off."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
