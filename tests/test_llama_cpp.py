"""GGUF exports run in llama.cpp (llama-cpp-python, built by `make llama`; CI builds it): the
run's answers, q4_k_m, and `tunelab serve --engine llama.cpp` through the openai client."""

import openai
import pytest
from tests.lm_helpers import QA, sft_overrides
from tests.serve_helpers import live_server

from tunelab.assistant import load_assistant
from tunelab.export.gguf import export_gguf
from tunelab.hardware import this_cpu
from tunelab.pipeline import load_config, run
from tunelab.serve.app import ServeLimits
from tunelab.serve.catalog import load_llama_catalog

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is built by `make llama`")

QUESTIONS = [q for q, _ in QA]


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("llama")
    run(load_config(None, sft_overrides(tmp_path, "lora", "train.epochs=3", "train.lr=0.01")))
    return tmp_path / "run"


def llama_answer(gguf, prompt_ids: list[int], max_tokens: int) -> list[int]:
    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=256, verbose=False)
    tokens = []
    for token in llm.generate(prompt_ids, temp=0.0, top_k=0, top_p=1.0, min_p=0.0):
        if token == llm.token_eos() or len(tokens) == max_tokens:
            break
        tokens.append(token)
    return tokens


def test_the_engine_is_built_for_this_cpu_without_amx_kernels():
    """`make llama` names the CPU's instruction sets (AVX2, AVX-512, VNNI, BF16 where present) and
    leaves out ggml's AMX backend, which segfaults on AMX Xeons (llama.cpp #20824)."""
    info = llama_cpp.llama_print_system_info().decode()
    assert "AMX" not in info
    flags = this_cpu().flags
    assert ("AVX2 = 1" in info) == ("avx2" in flags)
    assert ("AVX512 = 1" in info) == ("avx512f" in flags)
    assert ("AVX512_VNNI = 1" in info) == ("avx512_vnni" in flags)


def test_the_f32_export_answers_in_llama_cpp_as_the_run_does(sft_run, tmp_path):
    gguf = export_gguf(sft_run, tmp_path / "f32", "f32", ollama=False)
    assistant = load_assistant(sft_run)
    expected = assistant.answer(QUESTIONS, max_new_tokens=12)
    tokenizer = assistant.tokenizer
    for question, answer in zip(QUESTIONS, expected, strict=True):
        prompt = assistant.prompt([{"role": "user", "content": question}])
        tokens = llama_answer(gguf, tokenizer(prompt)["input_ids"], 12)
        assert tokenizer.decode(tokens, skip_special_tokens=True).strip() == answer, question


def test_q4_k_m_is_smaller_and_loads(sft_run, tmp_path):
    f16 = export_gguf(sft_run, tmp_path / "f16", "f16", ollama=False)
    q4 = export_gguf(sft_run, tmp_path / "q4", "q4_k_m", ollama=False)
    assert q4.stat().st_size < f16.stat().st_size
    assert llama_answer(q4, [1, 365, 411], 4)  # it generates (stories260K has 512 tokens)


def test_serve_with_the_llama_cpp_engine(sft_run):
    catalog = load_llama_catalog([f"assistant={sft_run}"], "f32")
    assert (sft_run / "gguf" / "f32").is_dir()  # exported once, reused on the next start
    assistant = load_assistant(sft_run)
    [expected] = assistant.answer([QUESTIONS[0]], max_new_tokens=12)
    with live_server(catalog, ServeLimits()) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": QUESTIONS[0]}],
            max_tokens=12,
            temperature=0,
        )
        assert reply.choices[0].message.content == expected
        stream = client.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": QUESTIONS[0]}],
            max_tokens=12,
            temperature=0,
            stream=True,
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == expected
