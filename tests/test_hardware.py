"""CPU detection from /proc/cpuinfo text of three real kinds of machine this project runs on, and
the precision `train.precision: auto` picks on each."""

from pathlib import Path

import pytest

from tunelab.hardware import FLAGS, describe_machine, machine_record, parse_cpuinfo
from tunelab.runtime import auto_precision

CPUINFO = Path(__file__).parent / "assets" / "cpuinfo"


def cpu(name: str):
    return parse_cpuinfo((CPUINFO / f"{name}.txt").read_text())


def test_an_avx2_only_amd_has_neither_native_bf16_nor_int8_dot_products():
    info = cpu("amd_epyc_avx2")
    assert (info.model, info.vendor, info.logical_cpus) == ("AMD EPYC 7B13", "AuthenticAMD", 2)
    assert info.flags == {"avx2"}
    assert not info.native_bf16 and not info.int8_dot and not info.amx


def test_an_amx_intel_has_bf16_and_int8_in_hardware():
    info = cpu("intel_xeon_amx")
    assert info.model == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert info.vendor == "GenuineIntel" and info.logical_cpus == 2
    assert info.flags == set(FLAGS)  # every flag that picks kernels
    assert info.native_bf16 and info.int8_dot and info.amx


def test_an_avx512_amd_without_amx_still_has_bf16_and_vnni():
    info = cpu("amd_epyc_zen5_avx512")
    assert info.model == "AMD EPYC" and info.logical_cpus == 2
    assert info.native_bf16 and info.int8_dot and not info.amx
    assert info.record()["flags"] == [
        "avx2",
        "avx512f",
        "avx512_bf16",
        "avx512_vnni",
        "avx_vnni",
    ]


def test_auto_stays_fp32_without_native_bf16_and_says_why():
    choice = auto_precision(cpu("amd_epyc_avx2"), cuda_bf16=False, measured_speedup=None)
    assert choice.accelerate == "no"
    assert "no native bf16" in choice.reason and "fp32" in choice.reason


@pytest.mark.parametrize("name", ["intel_xeon_amx", "amd_epyc_zen5_avx512"])
def test_auto_takes_bf16_on_native_bf16_only_when_it_measured_faster(name):
    info = cpu(name)
    faster = auto_precision(info, cuda_bf16=False, measured_speedup=1.6)
    assert faster.accelerate == "bf16" and "1.60x" in faster.reason
    slower = auto_precision(info, cuda_bf16=False, measured_speedup=0.9)
    assert slower.accelerate == "no" and "0.90x" in slower.reason


def test_auto_takes_bf16_on_a_gpu_that_has_it_whatever_the_cpu():
    assert (
        auto_precision(cpu("amd_epyc_avx2"), cuda_bf16=True, measured_speedup=None).accelerate
        == "bf16"
    )


def test_this_machine_is_recorded_with_its_flags_and_torch_build():
    record = machine_record()
    assert record["cpu"]["model"] and record["usable_cores"] >= 1
    assert record["torch"].startswith("2.13.0")
    line = describe_machine(record)
    assert record["cpu"]["model"] in line and record["torch_cpu_capability"] in line
