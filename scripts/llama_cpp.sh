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
if [ "${1:-converter}" = engine ] && ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
  .venv/bin/pip install -q scikit-build-core==1.1.2 diskcache==5.6.3 2>&1 | grep -v '^WARNING: Location' || true
  start=$(date +%s)
  CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    .venv/bin/pip install -q --no-deps --no-build-isolation "$source_dir" \
    2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import llama_cpp"  # fails the script (set -e) when the build failed
  echo "llama-cpp-python built in $(( $(date +%s) - start )) s"
fi
