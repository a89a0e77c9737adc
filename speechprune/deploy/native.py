"""Build and load speechprune's one C kernel (csrc/permute_ell.c) on first use.

It needs AVX-512 (vpermi2ps) and a C compiler (`cc`, as `make kenlm` needs too). The shared
library is compiled once per source version into ~/.cache/speechprune (or $XDG_CACHE_HOME) and
written atomically, so concurrent processes do not see half a file. Where the CPU lacks AVX-512
or no compiler works, `permute_ell_function()` returns None with the reason in
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


@functools.lru_cache(maxsize=None)
def permute_ell_function():
    """The compiled `permute_ell_matvec` as a ctypes function (numba can call it), or None."""
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
    function = ctypes.CDLL(str(library)).permute_ell_matvec
    pointer = ctypes.c_void_p
    function.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                         pointer, pointer, pointer, pointer, pointer]
    function.restype = None
    return function
