"""qlora: the base weights quantized to 4-bit NF4 (or 8-bit) by bitsandbytes, LoRA on top."""

from typing import Literal

import torch
from peft import prepare_model_for_kbit_training
from pydantic import Field
from torch import nn
from transformers import BitsAndBytesConfig

from tunelab.methods.base import LOW_RANK, QUANTIZED_BASE, MethodSpec, register
from tunelab.methods.lora import LoraSettings, apply_lora
from tunelab.models.anatomy import Anatomy

# Heads stay in full precision: a classifier's are new and train in full; a causal LM's
# output layer is what Transformers leaves unquantized by default too.
HEAD_MODULES = ["score", "classifier", "pre_classifier", "lm_head"]


class QLoraSettings(LoraSettings):
    name: Literal["qlora"] = "qlora"
    bits: Literal[4, 8] = Field(4, description="Precision of the frozen base weights.")
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type (seed 003: nf4).")
    double_quant: bool = Field(True, description="Quantize the quantization constants too.")
    compute_dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32",
        description="Matmul dtype; bfloat16 on GPUs (it is ~40x slower on CPUs without bf16).",
    )


def quantization_options(settings: QLoraSettings) -> dict:
    if settings.bits == 8:
        config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=HEAD_MODULES)
    else:
        config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=settings.quant_type,
            bnb_4bit_use_double_quant=settings.double_quant,
            bnb_4bit_compute_dtype=getattr(torch, settings.compute_dtype),
            llm_int8_skip_modules=HEAD_MODULES,
        )
    return {"quantization_config": config}


def apply_qlora(model: nn.Module, settings: QLoraSettings, anatomy: Anatomy) -> nn.Module:
    # Gradient checkpointing would trade speed for memory this model size does not need.
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return apply_lora(model, settings, anatomy)


register(
    MethodSpec(
        "qlora",
        QLoraSettings,
        apply_qlora,
        "adapter",
        "LoRA on a 4-bit base",
        load_options=quantization_options,
        merges=True,
        capabilities=frozenset({LOW_RANK, QUANTIZED_BASE}),
    )
)
