"""The settings of train.distributed's sharded engines: FSDP (torch's fully_shard) and DeepSpeed
ZeRO (through Accelerate's plugin). Apart from config/__init__.py to keep each file one topic."""

from typing import Literal

from pydantic import Field, model_validator

from tunelab.config.settings import StrictModel


class FsdpConfig(StrictModel):
    shard: Literal["full", "hybrid"] = Field(
        "full",
        description="full: every process holds 1/N of the weights, gradients and optimizer "
        "state; hybrid: sharded within a node, replicated across nodes (less traffic between "
        "machines).",
    )
    cpu_offload: bool = Field(
        False, description="Keep the sharded weights and optimizer state in CPU memory (GPUs)."
    )
    wrap: Literal["blocks", "model"] = Field(
        "blocks",
        description="blocks: each transformer block is its own shard unit (found by the model "
        "anatomy), so one block's weights are gathered at a time; model: one unit.",
    )


class DeepSpeedConfig(StrictModel):
    zero_stage: Literal[2, 3] = Field(
        2, description="ZeRO stage: 2 shards gradients and optimizer state, 3 the weights too."
    )
    offload_optimizer: bool = Field(False, description="Optimizer state in CPU memory.")
    offload_params: bool = Field(False, description="Weights in CPU memory (stage 3 only).")

    @model_validator(mode="after")
    def _offload_params_needs_stage_3(self) -> "DeepSpeedConfig":
        if self.offload_params and self.zero_stage != 3:
            raise ValueError("offload_params needs zero_stage=3 (stage 2 keeps whole weights)")
        return self
