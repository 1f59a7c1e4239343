"""sft: supervised instruction / Q&A fine-tuning; loss on the response tokens only by default
(the prompt positions carry label -100, set by data.conversations)."""

from tunelab.tasks.base import TASKS, Task
from tunelab.tasks.causal_lm import GENERATIVE_METHODS, causal_lm_loss, labelled_targets

TASKS.register("sft")(
    Task(
        "sft",
        causal_lm_loss,
        GENERATIVE_METHODS,
        model_kind="causal_lm",
        loss_units=labelled_targets,
    )
)
