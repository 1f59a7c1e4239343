#!/usr/bin/env bash
# Run as: bash scripts/llama_cpp.sh converter|engine   (setup.sh runs `converter`; `make llama` runs `engine`)
# converter: llama.cpp's convert_hf_to_gguf.py (with its gguf-py) from llama-cpp-python's source
#            package on PyPI, kept in .venv/share/tunelab/llama.cpp (seconds: a download).
# engine:    llama-cpp-python built from that source package with the machine's compilers
#            (cmake, g++), for GGUF checks, q4_k_m and the llama.cpp serving engine.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.3.36
home=.venv/share/tunelab/llama.cpp
source_dir=.venv/share/tunelab/llama-cpp-python-$VERSION
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -d "$source_dir" ]; then
  work=$(mktemp -d)
  .venv/bin/pip download -q --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$VERSION" \
    2>&1 | grep -v '^WARNING: Location' || true
  mkdir -p "$(dirname "$source_dir")"
  tar xzf "$work/llama_cpp_python-$VERSION.tar.gz" -C "$work"
  mv "$work/llama_cpp_python-$VERSION" "$source_dir"
  rm -rf "$work"
fi
if [ ! -f "$home/convert_hf_to_gguf.py" ]; then
  mkdir -p "$home"
  cp -r "$source_dir"/vendor/llama.cpp/{convert_hf_to_gguf.py,conversion,gguf-py,LICENSE} "$home/"
fi
# The engine is built for this CPU's instruction sets, named one by one (GGML_NATIVE=OFF), so that
# AMX stays off: with -march=native on an AMX Xeon (Sapphire/Granite Rapids) ggml compiles its AMX
# backend, which repacks the weights into an "AMX" buffer and segfaults in ggml_backend_amx_mul_mat
# on the first multi-token prompt (seen here on a q8_0 chat completion; upstream llama.cpp #20824,
# no fix released). AVX-512, VNNI and BF16 kernels stay on where the CPU has them.
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
on_if() { case "$cpu_flags" in *" $2 "*) echo "-D$1=ON" ;; *) echo "-D$1=OFF" ;; esac; }
avx512=OFF
for f in avx512f avx512cd avx512vl avx512dq avx512bw; do
  case "$cpu_flags" in *" $f "*) avx512=ON ;; *) avx512=OFF; break ;; esac
done
build_flags="-DGGML_NATIVE=OFF $(on_if GGML_SSE42 sse4_2) $(on_if GGML_AVX avx) $(on_if GGML_AVX2 avx2) \
$(on_if GGML_FMA fma) $(on_if GGML_F16C f16c) $(on_if GGML_BMI2 bmi2) $(on_if GGML_AVX_VNNI avx_vnni) \
-DGGML_AVX512=$avx512 $(on_if GGML_AVX512_VBMI avx512vbmi) $(on_if GGML_AVX512_VNNI avx512_vnni) \
$(on_if GGML_AVX512_BF16 avx512_bf16) -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
stamp=.venv/share/tunelab/llama-engine-flags
built_for() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$build_flags" ] && .venv/bin/python -c "import llama_cpp" 2>/dev/null; }
if [ "${1:-converter}" = engine ] && ! built_for; then
  .venv/bin/pip install -q scikit-build-core==1.1.2 diskcache==5.6.3 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/pip uninstall -q -y llama-cpp-python 2>/dev/null || true
  start=$(date +%s)
  CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF $build_flags" \
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    .venv/bin/pip install -q --no-deps --no-build-isolation --no-cache-dir "$source_dir" \
    2>&1 | grep -v '^WARNING: Location' || true
  # fails the script (set -e) when the build failed or AMX got in after all
  .venv/bin/python -c "import llama_cpp, sys; info = llama_cpp.llama_print_system_info().decode(); print(info); sys.exit('AMX kernels were built' if 'AMX' in info else 0)"
  echo "$build_flags" > "$stamp"
  echo "llama-cpp-python built in $(( $(date +%s) - start )) s"
fi
