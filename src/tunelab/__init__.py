"""tunelab: fine-tune a pretrained language model and compare methods."""

import logging
import os
import warnings

import torch

# bitsandbytes logs at import that an optional GPU-kernel package is missing; tunelab does not
# use it. Transformers 5 warns about a rename PEFT has not caught up with yet.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

# DeepSpeed (for train.distributed=deepspeed) picks its accelerator when first imported, which
# Transformers' save_pretrained does in every run, and warns on a machine without a GPU. Naming
# the CPU first keeps that line out of CPU runs; with a GPU, DeepSpeed finds it itself.
if not torch.cuda.is_available():
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
