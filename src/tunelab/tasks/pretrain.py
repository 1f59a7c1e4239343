"""pretrain: continued self-supervised training on raw domain text packed into blocks."""

from tunelab.tasks.base import TASKS, Task
from tunelab.tasks.causal_lm import GENERATIVE_METHODS, causal_lm_loss, labelled_targets

TRAINED_METHODS = GENERATIVE_METHODS - {"zero_shot", "few_shot"}

TASKS.register("pretrain")(
    Task(
        "pretrain",
        causal_lm_loss,
        TRAINED_METHODS,
        model_kind="causal_lm",
        loss_units=labelled_targets,
    )
)
