"""reward, dpo and ppo: preference learning. TRL computes the reward and DPO losses
(Bradley-Terry, DPO's sigmoid loss); PPO is train/ppo.py. compute_loss is not used."""

from tunelab.tasks.base import TASKS, Task

# Methods TRL's trainers take as they are: full weights, or a PEFT LoRA (4-bit base for qlora).
PREFERENCE_METHODS = frozenset({"full", "lora", "qlora"})


def trained_by_trl(model, batch):
    raise NotImplementedError("preference tasks are trained by TRL's trainers")


for name in ("reward", "dpo"):
    TASKS.register(name)(Task(name, trained_by_trl, PREFERENCE_METHODS, model_kind="preference"))

# PPO's reference is the policy with its adapter disabled, so the policy must be a PEFT adapter.
TASKS.register("ppo")(
    Task("ppo", trained_by_trl, frozenset({"lora", "qlora"}), model_kind="preference")
)
