"""tunelab: fine-tune a pretrained language model and compare methods."""

import logging
import warnings

# bitsandbytes logs at import that an optional GPU-kernel package is missing; tunelab does not
# use it. Transformers 5 warns about a rename PEFT has not caught up with yet.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
