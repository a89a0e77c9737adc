"""Build and load speechprune's C kernels (csrc/permute_ell.c) on first use.

It needs AVX-512 (vpermi2ps) and a C compiler (`cc`, as `make kenlm` needs too). The shared
library is compiled once per source version into ~/.cache/speechprune (or $XDG_CACHE_HOME) and
written atomically, so concurrent processes do not see half a file. Where the CPU lacks AVX-512
or no compiler works, `permute_ell_functions()` returns None with the reason in
`unavailable_reason()`, and the loader keeps the numba CSR kernel.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

import llvmlite.binding

SOURCE = Path(__file__).with_name("csrc") / "permute_ell.c"
_reason: str | None = None


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "speechprune"


def cpu_has_avx512() -> bool:
    features = llvmlite.binding.get_host_cpu_features()
    return bool(features.get("avx512f", False))


def unavailable_reason() -> str | None:
    """Why the C kernel is not in use (None when it is, or before the first attempt)."""
    return _reason


class PermuteEllFunctions(NamedTuple):
    """The compiled kernels as ctypes functions, which numba can call."""

    matvec: ctypes._CFuncPtr  # one vector
    matmat4: ctypes._CFuncPtr  # four vectors at once


@functools.lru_cache(maxsize=None)
def permute_ell_functions() -> PermuteEllFunctions | None:
    """The compiled kernels of csrc/permute_ell.c, or None (see `unavailable_reason()`)."""
    global _reason
    if os.environ.get("SPEECHPRUNE_NO_NATIVE"):
        _reason = "disabled by SPEECHPRUNE_NO_NATIVE"
        return None
    if not cpu_has_avx512():
        _reason = "this CPU has no AVX-512"
        return None
    source = SOURCE.read_bytes()
    library = _cache_dir() / f"permute_ell-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if not library.exists():
        temporary = None
        try:
            library.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=library.parent, suffix=".so", delete=False) as tmp:
                temporary = Path(tmp.name)
            subprocess.run(["cc", "-O3", "-shared", "-fPIC", "-o", str(temporary), str(SOURCE)],
                           check=True, capture_output=True, text=True, timeout=120)
            temporary.replace(library)
        except (OSError, subprocess.SubprocessError) as error:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
            detail = getattr(error, "stderr", "") or str(error)
            _reason = f"compiling {SOURCE.name} into {library.parent} failed: {detail.strip()[:300]}"
            return None
    compiled = ctypes.CDLL(str(library))
    integer, pointer = ctypes.c_int64, ctypes.c_void_p
    # (first_group, last_group, panels, slot_ptr, offsets, values, x_padded, out_padded), and
    # matmat4 the strides between its four columns after x_padded and after out_padded.
    matvec, matmat4 = compiled.permute_ell_matvec, compiled.permute_ell_matmat4
    matvec.argtypes = [integer, integer, integer, pointer, pointer, pointer, pointer, pointer]
    matmat4.argtypes = [integer, integer, integer, pointer, pointer, pointer,
                        pointer, integer, pointer, integer]
    matvec.restype = matmat4.restype = None
    return PermuteEllFunctions(matvec, matmat4)
