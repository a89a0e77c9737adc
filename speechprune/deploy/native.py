"""speechprune's C kernels (csrc/), compiled when the package installs, loaded through ctypes.

One extension module, `speechprune.deploy._native`, holds the int8 kernels of every level
(portable C, AVX2, AVX-512 with VBMI and VNNI: see csrc/int8_kernels.h) and the fp32
permute-ELL kernel (csrc/permute_ell.c, AVX-512). The level is chosen once per process: the
best this CPU runs, or the one `SPEECHPRUNE_KERNEL=portable|avx2|avx512` forces (an error when
the CPU lacks it). Where the module was not built (no C compiler at install time) or
`SPEECHPRUNE_NO_NATIVE=1` is set, `library()` is None, `unavailable_reason()` says why, and the
loader runs the numba kernels instead.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
from pathlib import Path
from typing import NamedTuple

LEVELS = ("portable", "avx2", "avx512")
LEVEL_ENV = "SPEECHPRUNE_KERNEL"
CSRC = Path(__file__).with_name("csrc")
# Bits of sp_cpu_features() (csrc/native_module.c) and what each level needs.
FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512vbmi", "avx512vnni")
LEVEL_FEATURES = {"portable": (), "avx2": ("avx2", "fma"),
                  "avx512": ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512vbmi",
                             "avx512vnni")}
_reason: str | None = None


class KernelLevelError(RuntimeError):
    """SPEECHPRUNE_KERNEL names a level this machine cannot run; the message says which exist."""


def unavailable_reason() -> str | None:
    """Why the C kernels are not in use (None when they are, or before the first attempt)."""
    return _reason


@functools.lru_cache(maxsize=None)
def library() -> ctypes.CDLL | None:
    """The compiled extension as a ctypes library, or None (see `unavailable_reason()`)."""
    global _reason
    if os.environ.get("SPEECHPRUNE_NO_NATIVE"):
        _reason = "disabled by SPEECHPRUNE_NO_NATIVE"
        return None
    spec = importlib.util.find_spec("speechprune.deploy._native")
    if spec is None or not spec.origin:
        _reason = ("the C kernels were not built when speechprune was installed (no working C "
                   "compiler?); install a compiler and reinstall (make env)")
        return None
    compiled = ctypes.CDLL(spec.origin)
    _declare(compiled)
    return compiled


def stale_sources() -> list[str]:
    """C sources newer than the compiled module (an editable checkout whose C changed since the
    last install: `make env` rebuilds it)."""
    spec = importlib.util.find_spec("speechprune.deploy._native")
    if spec is None or not spec.origin or not CSRC.is_dir():
        return []
    built = Path(spec.origin).stat().st_mtime
    return sorted(p.name for p in CSRC.iterdir() if p.stat().st_mtime > built)


def _declare(compiled: ctypes.CDLL) -> None:
    i32, i64, pointer = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    signatures = {
        "sp_cpu_features": ([], i32),
        "sp_cpu_levels": ([], i32),
        "sp_supports_layout": ([i32, pointer], i32),
        # (level, matrix, n, x, x_stride, bias, y, y_stride)
        "sp_linear": ([i32, pointer, i64, pointer, i64, pointer, pointer, i64], i32),
        # (level, w_hh, cell, bias_hh, projected, projected_stride, steps, reverse, out, out_stride)
        "sp_run_direction": ([i32, pointer, i32, pointer, pointer, i64, i64, i32, pointer, i64],
                             i32),
        # (level, matrix, n, x int8, x_stride, out int32, out_stride)
        "sp_matmat_int32": ([i32, pointer, i64, pointer, i64, pointer, i64], i32),
        # fp32 permute-ELL: (first_group, last_group, panels, slot_ptr, offsets, values,
        # x_padded, out_padded); matmat4 adds the strides between its four columns.
        "permute_ell_matvec": ([i64, i64, i64, pointer, pointer, pointer, pointer, pointer], None),
        "permute_ell_matmat4": ([i64, i64, i64, pointer, pointer, pointer, pointer, i64, pointer,
                                 i64], None),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(compiled, name)
        function.argtypes, function.restype = argtypes, restype


def cpu_features() -> tuple[str, ...]:
    """The instruction-set features of FEATURES this CPU and OS support (needs the library)."""
    compiled = library()
    bits = compiled.sp_cpu_features() if compiled is not None else 0
    return tuple(name for i, name in enumerate(FEATURES) if bits >> i & 1)


def supported_levels() -> tuple[str, ...]:
    """The int8 levels this machine runs, slowest first ("portable" always, when built)."""
    compiled = library()
    if compiled is None:
        return ()
    bits = compiled.sp_cpu_levels()
    return tuple(name for i, name in enumerate(LEVELS) if bits >> i & 1)


def missing_features(level: str) -> tuple[str, ...]:
    have = set(cpu_features())
    return tuple(f for f in LEVEL_FEATURES[level] if f not in have)


def selected_level() -> str | None:
    """The level int8 products run at: SPEECHPRUNE_KERNEL if set, else the best supported one;
    None without the library. Raises KernelLevelError for a level that is unknown or that this
    CPU lacks."""
    levels = supported_levels()
    if not levels:
        return None
    forced = os.environ.get(LEVEL_ENV, "").strip().lower()
    if not forced:
        return levels[-1]
    if forced not in LEVELS:
        raise KernelLevelError(f"{LEVEL_ENV}={forced!r} is not a kernel level; use one of "
                               f"{', '.join(LEVELS)} (this CPU runs {', '.join(levels)})")
    if forced not in levels:
        raise KernelLevelError(f"{LEVEL_ENV}={forced} needs {', '.join(missing_features(forced))}"
                               f", which this CPU lacks; it runs {', '.join(levels)}")
    return forced


def level_number(level: str) -> int:
    return LEVELS.index(level)


def describe_levels() -> str:
    """One line for logs and test headers: which levels run here and which is selected."""
    if library() is None:
        return f"C kernels unavailable: {unavailable_reason()}"
    try:
        chosen = selected_level()
    except KernelLevelError as error:
        chosen = f"none ({error})"
    missing = [f"{name} (lacks {', '.join(missing_features(name))})" for name in LEVELS
               if name not in supported_levels()]
    line = f"int8 kernel levels: {', '.join(supported_levels())}; selected: {chosen}"
    return line + (f"; not here: {', '.join(missing)}" if missing else "")


class PermuteEllFunctions(NamedTuple):
    """The fp32 permute-ELL kernels as ctypes functions, which numba can call."""

    matvec: ctypes._CFuncPtr  # one vector
    matmat4: ctypes._CFuncPtr  # four vectors at once


def cpu_has_avx512() -> bool:
    return "avx512f" in cpu_features()


@functools.lru_cache(maxsize=None)
def permute_ell_functions() -> PermuteEllFunctions | None:
    """The compiled fp32 permute-ELL kernels, or None (see `unavailable_reason()`)."""
    global _reason
    compiled = library()
    if compiled is None:
        return None
    if not cpu_has_avx512():
        _reason = "this CPU has no AVX-512"
        return None
    return PermuteEllFunctions(compiled.permute_ell_matvec, compiled.permute_ell_matmat4)
