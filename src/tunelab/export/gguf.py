"""tunelab export --format gguf|ollama: a generative run as one GGUF file for llama.cpp and
Ollama, with the run's prompt template, system message and stop token inside.

The weights go through llama.cpp's own converter (`convert_hf_to_gguf.py`, from the source
package of llama-cpp-python on PyPI, kept in the venv by `make llama`): it knows every
architecture's tensor names and the Llama q/k permutation, which a hand-written writer would
have to repeat. q4_k_m goes through llama.cpp's quantizer (`llama_model_quantize`, the same C
function as the `llama-quantize` tool). Written here: the chat template that carries the run's
own template and system message, and the Ollama Modelfile."""

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tunelab.data.templates import PLAIN_TEMPLATES
from tunelab.data.tool_calls import CALL_HOWTO, TOOLS_INTRO, renders_tools
from tunelab.errors import TunelabError
from tunelab.export.hf import export_run
from tunelab.methods import METHODS
from tunelab.models.loader import load_tokenizer
from tunelab.run_record import RunRecord, read_record

CONVERTER_HOME = Path(sys.prefix) / "share" / "tunelab" / "llama.cpp"
QUANTS = ("f32", "f16", "q8_0", "q4_k_m")  # f32: lossless, for checks
SETUP_HINT = "run `make llama` (builds llama-cpp-python from its source package, see README)"


def converter() -> Path:
    home = Path(os.environ.get("TUNELAB_LLAMA_CPP", CONVERTER_HOME))
    script = home / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise TunelabError(f"GGUF export needs llama.cpp's converter in {home}: {SETUP_HINT}")
    return script


def check_exportable(record: RunRecord, quant: str) -> None:
    if quant not in QUANTS:
        raise TunelabError(f"--quant: '{quant}' is not one of {', '.join(QUANTS)}")
    if record.model_kind != "causal_lm":
        raise TunelabError(
            f"GGUF holds a language model; a {record.task} run has a classifier head "
            "(export it with --merge as a Hugging Face folder)"
        )
    if record.artifact in ("trainable", "adapter") and not METHODS.get(record.method).merges:
        raise TunelabError(
            f"method '{record.method}' adds modules llama.cpp does not run and that do not fold "
            "into the base; GGUF export takes lora, qlora, ia3, full and partial runs"
        )


def hf_folder(run_dir: Path, record: RunRecord, target: Path) -> Path:
    """The run's model as a plain Hugging Face folder (an adapter merged into its base)."""
    if record.artifact == "adapter":
        return export_run(run_dir, target, merge=True)
    source = run_dir / record.artifact if record.artifact == "model" else Path(record.base_model)
    shutil.copytree(source, target)
    return target


def plain_chat_template(pattern: str) -> str:
    """A Jinja chat template that renders turns as the run's plain template does."""
    prefix, _, suffix = pattern.partition("{prompt}")
    return (
        "{% for m in messages %}"
        "{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
        f"{{% elif m['role'] == 'user' %}}{jinja_text(prefix)}{{{{ m['content'] }}}}"
        f"{jinja_text(suffix)}"
        "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
    )


def jinja_text(text: str) -> str:
    """Literal text inside a Jinja template ({ and } would open a tag)."""
    return "{{ " + repr(text) + " }}" if text else ""


def run_chat_template(record: RunRecord, tokenizer) -> str | None:
    """The chat template the run answers with, its system message the default one."""
    if record.template is None:
        return None
    if record.template == "chat":
        template = tokenizer.chat_template
    else:
        template = plain_chat_template(PLAIN_TEMPLATES.get(record.template, record.template))
    if not record.system:
        return template
    system = repr(record.system)
    return (
        "{% if not messages or messages[0]['role'] != 'system' %}"
        f"{{% set messages = [{{'role': 'system', 'content': {system}}}] + messages %}}"
        "{% endif %}" + template
    )


def convert(hf: Path, out: Path, outtype: str) -> None:
    command = [sys.executable, str(converter()), str(hf), "--outfile", str(out)]
    result = subprocess.run(
        [*command, "--outtype", outtype], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not out.is_file():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise TunelabError(f"llama.cpp's converter failed on {hf}: {last}")


def quantize_q4_k_m(source: Path, out: Path) -> None:
    try:
        import llama_cpp
    except ImportError:
        raise TunelabError(f"q4_k_m needs llama.cpp's quantizer: {SETUP_HINT}") from None
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    code = llama_cpp.llama_model_quantize(
        str(source).encode(), str(out).encode(), ctypes.byref(params)
    )
    if code != 0:
        raise TunelabError(f"llama.cpp could not quantize {source} to q4_k_m (code {code})")


def export_gguf(run_dir: str | Path, out: str | Path, quant: str, ollama: bool) -> Path:
    """out/<run>-<quant>.gguf (and out/Modelfile for Ollama)."""
    run_dir, out = Path(run_dir), Path(out)
    record = read_record(run_dir)
    check_exportable(record, quant)
    if out.exists() and any(out.iterdir()):
        raise TunelabError(f"export target {out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{run_dir.resolve().name}-{quant}.gguf"
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        hf = hf_folder(run_dir, record, Path(scratch) / "hf")
        tokenizer = load_tokenizer(str(hf))
        tokenizer.chat_template = run_chat_template(record, tokenizer)
        tokenizer.save_pretrained(hf)
        if quant == "q4_k_m":
            f16 = Path(scratch) / "f16.gguf"
            convert(hf, f16, "f16")
            quantize_q4_k_m(f16, target)
        else:
            convert(hf, target, quant)
    if ollama:
        (out / "Modelfile").write_text(modelfile(target.name, record, tokenizer))
    return target


def modelfile(gguf_name: str, record: RunRecord, tokenizer) -> str:
    """Ollama's recipe: the file, the prompt format (Go template), the system message, stops."""
    lines = [f"FROM ./{gguf_name}"]
    chat_template = tokenizer.chat_template or ""
    if record.template == "chat" and renders_tools(tokenizer) and "<|im_start|>" in chat_template:
        lines.append(f'TEMPLATE """{chatml_tools_go(tokenizer.eos_token)}"""')
    elif record.template == "chat" and "<|im_start|>" in chat_template:
        lines.append(f'TEMPLATE """{CHATML_GO}"""')
    elif record.template not in (None, "chat"):
        pattern = PLAIN_TEMPLATES.get(record.template, record.template)
        prefix, _, suffix = pattern.partition("{prompt}")
        lines.append(f'TEMPLATE """{plain_go_template(prefix, suffix)}"""')
    if record.system:
        lines.append(f'SYSTEM """{record.system}"""')
    if tokenizer.eos_token:
        lines.append(f'PARAMETER stop "{tokenizer.eos_token}"')
    return "\n".join(lines) + "\n"


# ChatML (SmolLM2's format) as an Ollama Go template
CHATML_GO = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)


def chatml_tools_go(eos: str) -> str:
    """tunelab's tools template (data/tool_calls.TOOLS_TEMPLATE) as an Ollama Go template, after
    the layout of Ollama's own Qwen 2.5 template: the schemas in the system turn, each call a
    <tool_call> JSON block (from which Ollama learns to parse calls), each tool result in a user
    turn, consecutive results in one. Ollama writes JSON without spaces after `:` and `,`, where
    training wrote them with; the words and tags are the same."""
    tools = (
        f"{{{{- if .Tools }}}}<|im_start|>system\n{{{{ if .System }}}}{{{{ .System }}}}\n\n"
        f"{{{{ end }}}}{TOOLS_INTRO}\n<tools>\n"
        '{{ range .Tools }}{"type": "function", "function": {{ .Function }}}\n{{ end }}'
        f"</tools>\n{CALL_HOWTO}{eos}\n"
        f"{{{{ else if .System }}}}<|im_start|>system\n{{{{ .System }}}}{eos}\n{{{{ end }}}}"
    )
    close_results = f'{{{{ if and (eq $prev "tool") (ne .Role "tool") }}}}{eos}\n{{{{ end }}}}'
    calls = (
        "{{ range $j, $c := $m.ToolCalls }}{{ if or $m.Content $j }}\n{{ end }}"
        '<tool_call>\n{"name": "{{ $c.Function.Name }}", '
        '"arguments": {{ $c.Function.Arguments }}}\n</tool_call>{{ end }}'
    )
    messages = (
        '{{- $prev := "" }}{{ range $i, $m := .Messages }}'
        f"{close_results}"
        '{{ if eq .Role "user" }}<|im_start|>user\n{{ .Content }}'
        f"{eos}\n"
        '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}'
        f"{calls}{eos}\n"
        '{{ else if eq .Role "tool" }}{{ if ne $prev "tool" }}<|im_start|>user{{ end }}'
        "\n<tool_response>\n{{ .Content }}\n</tool_response>{{ end }}"
        "{{ $prev = .Role }}{{ end }}"
        f'{{{{ if eq $prev "tool" }}}}{eos}\n{{{{ end }}}}<|im_start|>assistant\n'
    )
    return tools + messages


def plain_go_template(prefix: str, suffix: str) -> str:
    return (
        "{{- if .System }}{{ .System }}\n\n{{ end }}"
        '{{- range .Messages }}{{ if eq .Role "user" }}'
        f"{prefix}{{{{ .Content }}}}{suffix}"
        '{{ else if eq .Role "assistant" }}{{ .Content }}{{ end }}{{ end }}'
    )
