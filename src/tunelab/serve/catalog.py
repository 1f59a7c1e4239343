"""What a server holds: the runs it was given, loaded so that runs on one base share it.

LoRA runs (lora, qlora) whose base model is the same are loaded as named adapters on one copy
of that base (`PeftModel.load_adapter`), and the base itself is served under its model name:
a request picks one with its `model` field and PEFT runs rows for different adapters in one
batch (`adapter_names`, "__base__" for the base). Other runs (full, partial, bottleneck
adapters, soft prompts, IA3) change the model itself or cannot be mixed in a batch, so each
gets a model of its own through the one run loader."""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from peft import PeftModel
from transformers import PreTrainedTokenizerBase

from tunelab.artifacts import load_base, load_run, loading, method_of
from tunelab.data.templates import adds_special_tokens, generation_prompt
from tunelab.errors import TunelabError
from tunelab.export.gguf import SETUP_HINT, export_gguf
from tunelab.models.loader import load_tokenizer
from tunelab.run_record import RunRecord, read_record
from tunelab.serve.pools import BASE_ADAPTER, LlamaPool, Pool, TorchPool
from tunelab.tasks.generative.scope_guard import ScopeGuard, load_guard

MIXABLE_PEFT_TYPES = {"LORA"}  # the adapter types PEFT can mix in one batch
LLAMA_CONTEXT = 2048  # llama.cpp's KV cache, in tokens (prompt + answer)


@dataclass
class Served:
    """One name a client can ask for: a run (or a base model) and how to prompt it."""

    name: str
    kind: str  # "generate" (chat and completions) or "classify"
    pool: Pool
    tokenizer: PreTrainedTokenizerBase
    record: RunRecord | None = None  # None: a base model served as it is
    adapter: str | None = None  # the adapter's name in a mixed pool
    guard: ScopeGuard | None = None  # the run's scope guard: off-topic questions are refused

    @property
    def template(self) -> str | None:
        if self.record is not None:
            return self.record.template
        return "chat" if self.tokenizer.chat_template else None

    def chat_prompt(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        """The run's own template, system message and few-shot turns around the messages; the
        tools, where given, as the template writes them (tunelab's where it writes none)."""
        if self.template is None:
            raise TunelabError(
                f"model '{self.name}' has no prompt template; use /v1/completions with a prompt"
            )
        shots = self.record.shots if self.record else []
        system = self.record.system if self.record else None
        if tools and self.template != "chat":
            raise TunelabError(f"model '{self.name}' has no chat template to show tools with")
        return generation_prompt([*shots, *messages], self.template, self.tokenizer, system, tools)

    @property
    def adds_special_tokens(self) -> bool:
        return adds_special_tokens(self.template)

    @property
    def default_max_tokens(self) -> int:
        return self.record.max_new_tokens if self.record else 64


@dataclass
class Catalog:
    models: dict[str, Served] = field(default_factory=dict)

    def get(self, name: str) -> Served | None:
        return self.models.get(name)

    def add(self, served: Served) -> None:
        if served.name in self.models:
            raise TunelabError(
                f"two models are named '{served.name}'; name them as NAME=RUN_DIR on the command"
            )
        self.models[served.name] = served


SERVED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def named_run_dirs(arguments: list[str]) -> list[tuple[str, Path]]:
    """RUN_DIR (named after its folder) or NAME=RUN_DIR."""
    named = []
    for argument in arguments:
        name, equals, path = argument.rpartition("=")
        run_dir = Path(path)
        name = name if equals else run_dir.resolve().name
        if not SERVED_NAME.fullmatch(name):
            raise TunelabError(
                f"{argument}: '{name}' cannot be a served name (a request's `model`): use "
                "letters, digits, '.', '_', ':' or '-', at most 64, e.g. assistant=runs/x"
            )
        named.append((name, run_dir))
    return named


def peft_type(run_dir: Path, record: RunRecord) -> str | None:
    config = run_dir / record.artifact / "adapter_config.json"
    if record.artifact != "adapter" or not config.is_file():
        return None
    return json.loads(config.read_text()).get("peft_type")


def base_name(record: RunRecord) -> str:
    """The name a base model is served under: the configured model name, or its folder's."""
    return Path(record.model).name if "/" in record.model else record.model


def shares_base(run_dir: Path, record: RunRecord) -> bool:
    if record.model_kind != "causal_lm":
        return False
    return record.artifact == "prompt" or peft_type(run_dir, record) in MIXABLE_PEFT_TYPES


def pool_key(record: RunRecord) -> tuple[str, bool]:
    """Runs share a base when it is the same folder, loaded the same way (qlora: in 4 bits)."""
    spec, settings = method_of(record)
    return record.base_model, bool(spec.options(settings))


def open_shared(record: RunRecord, tokenizer: PreTrainedTokenizerBase) -> TorchPool:
    base = load_base(record, tokenizer)
    base.eval()
    return TorchPool(model=base, tokenizer=tokenizer)


def attach_adapter(pool: TorchPool, name: str, folder: Path) -> None:
    """The run's adapter on the pool's base, under the run's name."""
    if isinstance(pool.model, PeftModel):
        pool.model.load_adapter(str(folder), adapter_name=name)
    else:
        pool.model = PeftModel.from_pretrained(pool.model, str(folder), adapter_name=name)
        pool.mixed = True
    pool.model.eval()


def add_shared(catalog: Catalog, pools: dict, name: str, run_dir: Path, record: RunRecord) -> None:
    """A run served on a base shared with other runs (its adapter attached to the base's pool)."""
    tokenizer = load_tokenizer(str(run_dir / record.artifact))
    key = pool_key(record)
    if key not in pools:
        pools[key] = open_shared(record, tokenizer)
        if base_name(record) not in catalog.models:
            catalog.add(Served(base_name(record), "generate", pools[key], tokenizer))
    pool = pools[key]
    if len(tokenizer) != len(pool.tokenizer):
        raise TunelabError(f"{run_dir}: its tokenizer differs from the other runs on its base")
    adapter = BASE_ADAPTER
    if record.artifact == "adapter":
        attach_adapter(pool, name, run_dir / record.artifact)
        adapter = name
    catalog.add(Served(name, "generate", pool, tokenizer, record, adapter))


def load_catalog(arguments: list[str]) -> Catalog:
    """Every run (and each shared base) under the name a request's `model` field gives."""
    catalog, pools = Catalog(), {}
    for name, run_dir in named_run_dirs(arguments):
        record = read_record(run_dir)
        if "score" in record.abilities:  # a reward model: one output, no class names
            raise TunelabError(
                f"{run_dir} is a {record.task} run; serve takes sft and classify runs"
            )
        if not shares_base(run_dir, record):
            model, tokenizer, _ = load_run(run_dir)
            kind = "classify" if record.model_kind == "classifier" else "generate"
            catalog.add(Served(name, kind, TorchPool(model, tokenizer), tokenizer, record))
            continue
        with loading(run_dir):
            add_shared(catalog, pools, name, run_dir, record)
    for served in catalog.models.values():  # the base rows of a mixed pool use no adapter
        if served.pool.mixed and served.adapter is None:
            served.adapter = BASE_ADAPTER
    return with_guards(catalog, arguments)


def with_guards(catalog: Catalog, arguments: list[str]) -> Catalog:
    """Each sft run that trained a scope guard answers through it."""
    for name, run_dir in named_run_dirs(arguments):
        served = catalog.models[name]
        served.guard = load_guard(run_dir, served.record)
    return catalog


def load_llama_catalog(arguments: list[str], quant: str) -> Catalog:
    """Each generative run as its GGUF export in llama.cpp (exported once, into
    RUN_DIR/gguf/<quant>/, and reused on the next start)."""
    try:
        import llama_cpp
        from llama_cpp import Llama
    except ImportError:
        raise TunelabError(f"--engine llama.cpp needs llama-cpp-python: {SETUP_HINT}") from None
    if "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode():
        # ggml's AMX kernels segfault on the first multi-token prompt (llama.cpp #20824): a crash
        # of the whole server, so refused here; `make llama` builds the engine without them.
        raise TunelabError(
            "--engine llama.cpp: this llama-cpp-python was built with AMX kernels, which crash "
            f"on a chat prompt; rebuild it without them: {SETUP_HINT}"
        )
    catalog = Catalog()
    for name, run_dir in named_run_dirs(arguments):
        record = read_record(run_dir)
        if record.model_kind != "causal_lm":
            raise TunelabError(f"{run_dir}: llama.cpp serves generative runs, not {record.task}")
        folder = run_dir / "gguf" / quant
        found = sorted(folder.glob("*.gguf")) if folder.is_dir() else []
        gguf = found[0] if found else export_gguf(run_dir, folder, quant, ollama=False)
        llm = Llama(model_path=str(gguf), n_ctx=LLAMA_CONTEXT, verbose=False)
        tokenizer = load_tokenizer(str(run_dir / record.artifact))
        catalog.add(Served(name, "generate", LlamaPool(llm, tokenizer), tokenizer, record))
    return with_guards(catalog, arguments)
