"""The generative family: sft and pretrain (importing registers both)."""

from tunelab.tasks.generative import pretrain, sft  # noqa: F401 - registration side effect
