"""`trainer.precision=auto`: bf16 only where the CPU computes it natively."""

from pathlib import Path

import pytest
import torch

from speechprune.training.precision import autocast_dtype, cpu_flags, resolve_precision

CPU = torch.device("cpu")


def write_cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: {flags}\n\n"
                    f"processor\t: 1\nflags\t\t: {flags}\n")
    return path


def test_auto_is_bf16_on_a_cpu_with_avx512_bf16_or_amx_and_fp32_on_avx2(tmp_path):
    """Seen to fail: with `any` over the flag names replaced by a check for `avx512f`, the
    AVX2-only CPU stays fp32 but an AVX-512 CPU without BF16 was given bf16."""
    zen4 = cpu_flags(write_cpuinfo(tmp_path, "fpu sse2 avx2 fma avx512f avx512_bf16 avx512_vnni"))
    sapphire = cpu_flags(write_cpuinfo(tmp_path, "avx2 avx512f amx_bf16 amx_tile"))
    skylake = cpu_flags(write_cpuinfo(tmp_path, "avx2 fma avx512f avx512bw"))
    zen3 = cpu_flags(write_cpuinfo(tmp_path, "sse2 avx2 fma"))
    assert "avx512_bf16" in zen4 and "fpu" in zen4
    assert resolve_precision("auto", CPU, zen4) == "bf16"
    assert resolve_precision("auto", CPU, sapphire) == "bf16"
    assert resolve_precision("auto", CPU, skylake) == "fp32"
    assert resolve_precision("auto", CPU, zen3) == "fp32"
    assert resolve_precision("fp32", CPU, zen4) == "fp32"  # an explicit choice is kept
    assert cpu_flags(tmp_path / "missing") == set()


def test_autocast_dtypes_and_errors_name_the_key():
    assert autocast_dtype("bf16", CPU) is torch.bfloat16 and autocast_dtype("fp32", CPU) is None
    with pytest.raises(ValueError, match=r"trainer.precision='half'.*'auto'"):
        autocast_dtype("half", CPU)
    with pytest.raises(ValueError, match="trainer.precision=fp16 needs a GPU"):
        autocast_dtype("fp16", CPU)
