"""The compiled C kernels: found where the package installed them, the level chosen by the CPU
or by SPEECHPRUNE_KERNEL, and a clear reason wherever they cannot run."""

from __future__ import annotations

import importlib.util

import pytest

from speechprune.deploy import native


@pytest.fixture
def fresh_native(monkeypatch):
    """native's caches emptied for the test (the real ones come back afterwards)."""
    monkeypatch.setattr(native, "_reason", native.unavailable_reason())
    native.library.cache_clear()
    native.permute_ell_functions.cache_clear()
    yield native
    native.library.cache_clear()
    native.permute_ell_functions.cache_clear()


def test_the_kernels_were_compiled_at_install_from_the_current_sources():
    assert native.library() is not None, native.unavailable_reason()
    assert native.stale_sources() == [], "C sources changed since the build: run `make env`"
    assert "portable" in native.supported_levels()


def test_every_x86_64_cpu_with_avx2_runs_the_avx2_and_portable_levels():
    levels = native.supported_levels()
    features = native.cpu_features()
    assert ("avx2" in levels) == ("avx2" in features and "fma" in features)
    assert ("avx512" in levels) == all(f in features for f in native.LEVEL_FEATURES["avx512"])
    assert levels[-1] == native.selected_level()


def test_a_forced_level_is_used_and_one_the_cpu_lacks_is_refused(monkeypatch):
    monkeypatch.setenv(native.LEVEL_ENV, "portable")
    assert native.selected_level() == "portable"
    monkeypatch.setenv(native.LEVEL_ENV, "sse9")
    with pytest.raises(native.KernelLevelError, match="SPEECHPRUNE_KERNEL='sse9' is not a kernel "
                                                      "level; use one of portable, avx2, avx512"):
        native.selected_level()
    monkeypatch.setattr(native, "supported_levels", lambda: ("portable", "avx2"))
    monkeypatch.setattr(native, "cpu_features", lambda: ("avx2", "fma", "avx512f"))
    monkeypatch.setenv(native.LEVEL_ENV, "avx512")
    with pytest.raises(native.KernelLevelError, match="SPEECHPRUNE_KERNEL=avx512 needs "
                                                      "avx512bw, avx512vl, avx512vbmi, avx512vnni"):
        native.selected_level()


def test_disabled_or_missing_kernels_say_why(fresh_native, monkeypatch):
    monkeypatch.setenv("SPEECHPRUNE_NO_NATIVE", "1")
    assert fresh_native.library() is None
    assert fresh_native.permute_ell_functions() is None
    assert fresh_native.unavailable_reason() == "disabled by SPEECHPRUNE_NO_NATIVE"
    assert fresh_native.supported_levels() == () and fresh_native.selected_level() is None
    fresh_native.library.cache_clear()
    monkeypatch.delenv("SPEECHPRUNE_NO_NATIVE")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert fresh_native.library() is None
    assert "not built when speechprune was installed" in fresh_native.unavailable_reason()
    assert "unavailable" in fresh_native.describe_levels()


def test_permute_ell_needs_avx512_and_says_so(fresh_native, monkeypatch):
    monkeypatch.setattr(fresh_native, "cpu_has_avx512", lambda: False)
    assert fresh_native.permute_ell_functions() is None
    assert fresh_native.unavailable_reason() == "this CPU has no AVX-512"
