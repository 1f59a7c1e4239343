"""The two peers of the SFT cases (c) and (d), each what a user would write instead of tunelab:

- baseline: the Hugging Face docs' `Trainer` + `TrainingArguments` + PEFT script, the standard
  dynamic-padding collator (`DataCollatorForSeq2Seq`, labels padded with -100), random batches
  and the model's own loss (full-vocabulary logits at every position). It trains on tunelab's
  encoded rows.
- trl: TRL 1.16's `SFTTrainer` as its docs show it: conversational prompt-completion rows (it
  applies the chat template and tokenizes them itself), the completion-only loss it picks for
  such rows, its default chunked loss (the output layer only where a label is) and a
  `peft_config`. Two defaults are changed, each to what a CPU user must do or to the other sides'
  setting: `bf16` as tunelab's train.precision resolves here (True only where the CPU has native
  bf16 and the run asks for bf16, or for auto where auto picked it; AVX2 CPUs emulate bf16 ~40x
  slower), and
  `gradient_checkpointing=False` (neither other side recomputes activations). For QLoRA, TRL
  casts the adapter weights to bf16 (QLoRA paper); they are put back in fp32 for the same
  reason.

Both load the model as tunelab does (fp32, or the same 4-bit `BitsAndBytesConfig`), start from
the same LoRA initialisation (the seed is set before loading), use the same rows, split,
hyperparameters and epochs, and are scored by tunelab's held-out perplexity."""

import tempfile
import time

from sides import EpochClock

from tunelab.runtime import resolve_precision  # noqa: E402


def lora_settings(config):
    """The config's all-linear, r, alpha and dropout, as tunelab's run."""
    from peft import LoraConfig

    m = config.method
    return LoraConfig(task_type="CAUSAL_LM", r=m.r, lora_alpha=m.alpha,
                      lora_dropout=m.dropout, target_modules=m.target_modules)  # fmt: skip


def base_model(config, path: str):
    import torch
    from transformers import AutoModelForCausalLM

    from tunelab.methods.qlora import quantization_options
    from tunelab.models.loader import keep_4bit_weights_trainable

    quantized = config.method.name == "qlora"
    options = quantization_options(config.method) if quantized else {}
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **options)
    if quantized:  # the validation pass runs in eval mode; see keep_4bit_weights_trainable
        keep_4bit_weights_trainable(model)
    return model


def trainer_settings(config) -> dict:
    """The hyperparameters both peers pass to their TrainingArguments (or SFTConfig)."""
    t = config.train
    bf16 = resolve_precision(t).accelerate == "bf16"  # what tunelab runs at this train.precision
    return dict(bf16=bf16,
        output_dir=tempfile.mkdtemp(), num_train_epochs=t.epochs,
        per_device_train_batch_size=t.batch_size, learning_rate=t.lr,
        weight_decay=t.weight_decay, lr_scheduler_type=t.scheduler, warmup_steps=t.warmup_ratio,
        save_strategy="no", report_to="none", use_cpu=True, seed=t.seed, disable_tqdm=True,
    )  # fmt: skip


def baseline_trainer(config, task, model, callbacks):
    from datasets import Dataset
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    if config.method.name == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(model, lora_settings(config))
    encoded = task.data.encoded["train"]
    rows = Dataset.from_list(
        [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in encoded]
    )
    args = TrainingArguments(**trainer_settings(config), remove_unused_columns=False)
    collator = DataCollatorForSeq2Seq(task.tokenizer, label_pad_token_id=-100)
    return Trainer(model=model, args=args, train_dataset=rows, data_collator=collator,
                   callbacks=callbacks)  # fmt: skip


def conversational_rows(config, task) -> list[dict]:
    """tunelab's training rows as TRL's conversational prompt-completion rows; a row tunelab
    dropped as over data.max_length (overlong: drop) is dropped here too."""
    rows = []
    for example in task.data.examples["train"]:
        *prompt, answer = example.messages
        whole = task.tokenizer.apply_chat_template(example.messages, tokenize=True)
        if len(whole["input_ids"] if isinstance(whole, dict) else whole) <= config.data.max_length:
            rows.append({"prompt": prompt, "completion": [answer]})
    return rows


def trl_trainer(config, task, model, callbacks):
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(**trainer_settings(config), max_length=config.data.max_length,
                     gradient_checkpointing=False)  # fmt: skip
    rows = Dataset.from_list(conversational_rows(config, task))
    trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=task.tokenizer,
                         peft_config=lora_settings(config), callbacks=callbacks)  # fmt: skip
    for parameter in trainer.model.parameters():  # QLoRA: TRL made the adapter bf16
        if parameter.requires_grad and parameter.dtype == torch.bfloat16:
            parameter.data = parameter.data.float()
    return trainer


PEERS = {"baseline": baseline_trainer, "trl": trl_trainer}


def run_peer(name: str, config) -> dict:
    """Train one peer on the config's rows; its per-epoch times (validation excluded), val
    losses, real training tokens and test perplexity."""
    from transformers import set_seed

    from tunelab.pipeline import open_task
    from tunelab.tasks.generative.evaluate import perplexity

    started = time.perf_counter()
    task = open_task(config)  # the same rows, labels and split as tunelab's run
    task.prepare()
    set_seed(config.train.seed)  # as tunelab does before loading: LoRA starts the same
    model = base_model(config, task.run.model_path)
    val_loss, trained = [], {}

    def validate():  # the same perplexity function as tunelab's; its time is not training
        val_loss.append(perplexity(trained["model"], task.data.encoded["val"], task.tokenizer, 8)["loss"])  # fmt: skip

    clock = EpochClock(after_epoch=validate)
    trainer = PEERS[name](config, task, model, [clock.callback])
    trained["model"] = trainer.model
    trainer.train()
    test = perplexity(trainer.model, task.data.encoded["test"], task.tokenizer, 8)
    train_tokens = sum(len(e["input_ids"]) for e in task.data.encoded["train"])
    return {
        "wall_s": time.perf_counter() - started,
        "train_s": clock.marks[-1],
        "epoch_end_s": clock.marks,
        "val_loss": val_loss,
        "real_train_tokens": train_tokens * config.train.epochs,
        "test_value": test["perplexity"],
        "precision": {"used": "bf16" if trainer.args.bf16 else "fp32"},
    }
