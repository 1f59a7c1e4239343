"""What this machine computes with: the CPU model, the instruction sets that decide which kernels
run (native bf16, int8 dot products), the cores, and the torch build. The same code runs at
different speeds, and rounds differently, on an AVX2-only AMD EPYC and an AMX Intel Xeon, so
every measurement records this (`machine_record`) and the precision choice reads it.

Written here because neither torch nor the standard library names the CPU's feature flags:
`torch.backends.cpu.get_cpu_capability()` gives only the widest vector ISA torch dispatches to.
"""

import json
import os
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

# The flags (as Linux names them in /proc/cpuinfo) that change which kernels run.
FLAGS = (
    "avx2",
    "avx512f",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "avx512_vnni",
    "avx_vnni",
)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # bf16 dot products in hardware
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products in hardware
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuInfo:
    model: str
    vendor: str
    logical_cpus: int
    flags: frozenset[str]  # only those in FLAGS

    @property
    def native_bf16(self) -> bool:
        return any(flag in self.flags for flag in BF16_FLAGS)

    @property
    def int8_dot(self) -> bool:
        return any(flag in self.flags for flag in INT8_FLAGS)

    @property
    def amx(self) -> bool:
        return "amx_tile" in self.flags

    def record(self) -> dict:
        return {
            "model": self.model,
            "vendor": self.vendor,
            "logical_cpus": self.logical_cpus,
            "flags": sorted(self.flags, key=FLAGS.index),
            "native_bf16": self.native_bf16,
            "int8_dot": self.int8_dot,
        }


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor block of /proc/cpuinfo-style text (every core of one machine has the
    same flags); the processor count is the number of blocks."""
    fields: dict[str, str] = {}
    processors = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "processor":
            processors += 1
        fields.setdefault(key, value.strip())
    present = set(fields.get("flags", "").split())
    return CpuInfo(
        model=fields.get("model name") or platform.processor() or "unknown",
        vendor=fields.get("vendor_id", "unknown"),
        logical_cpus=processors or (os.cpu_count() or 1),
        flags=frozenset(flag for flag in FLAGS if flag in present),
    )


@cache
def this_cpu() -> CpuInfo:
    text = CPUINFO.read_text() if CPUINFO.is_file() else ""
    return parse_cpuinfo(text)


def usable_cores() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than exist)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_record() -> dict:
    """The machine a figure was measured on, for run records, benchmark JSONs and the doctor."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": this_cpu().record(),
        "usable_cores": usable_cores(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
    }


def describe_machine(record: dict | None = None) -> str:
    """One line for tables and the doctor: 'AMD EPYC, 2 cores, avx2 avx512f ..., torch 2.13.0'."""
    record = record or machine_record()
    cpu = record["cpu"]
    flags = " ".join(cpu["flags"]) or "no avx2"
    gpu = f", GPU {record['gpu']}" if record.get("gpu") else ""
    return (
        f"{cpu['model']}, {record['usable_cores']} cores, {flags}, "
        f"torch {record['torch']} ({record['torch_cpu_capability']}){gpu}"
    )


def write_measurement(path: Path, report: dict, **dump_options) -> Path:
    """A measurement's JSON with the machine it ran on ("machine"), for benchmarks and quantize."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**report, "machine": machine_record()}, indent=2, **dump_options))
    return path
