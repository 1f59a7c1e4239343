#!/usr/bin/env bash
# The GPU path, checked in one short script on a machine with a CUDA GPU (CI has none):
#   bash benchmarks/gpu_check.sh            # after `make setup` with a CUDA build of torch
# 1. the tests marked `gpu` (bf16 autocast chosen by train.precision=auto, FSDP and DeepSpeed
#    ZeRO-2 on one GPU, QLoRA on bitsandbytes' CUDA kernels, the fused LoRA layer against PEFT);
# 2. the SFT benchmark's LoRA and QLoRA cases (one epoch, 200 rows), each line with the device.
# Results: benchmarks/results/gpu_check.txt and the benchmark's JSON files.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results/gpu_check.txt
mkdir -p benchmarks/results
device=$($PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name(0))")
{
  echo "device: $device"
  echo "torch: $($PY -c 'import torch; print(torch.__version__, torch.version.cuda)')"
  $PY -m pytest -q -n 0 -m gpu tests/test_gpu.py 2>&1 | tail -n 15
  for method in lora qlora; do
    echo "--- sft $method on $device"
    $PY benchmarks/sft_lora.py --method "$method" --epochs 1 --limit-train 200 2>&1 | tail -n 12
  done
} | tee "$OUT"
