"""speechprune/atomic_write.py: a reader sees the old file or the new one, never a part."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speechprune import atomic_write
from speechprune.atomic_write import atomic_open, atomic_path


def test_a_writer_that_fails_half_way_leaves_the_old_file_and_no_temporary(tmp_path):
    """Seen to fail: with atomic_path yielding the target itself (writing in place), the target
    held "half" and the old content was gone."""
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_open(target) as out:
            out.write("half")
            out.flush()
            raise RuntimeError("disk on fire")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_finished_write_replaces_the_target_and_creates_its_folder(tmp_path):
    target = tmp_path / "a" / "b" / "plan.json"
    atomic_write.write_text(target, "new")
    assert target.read_text() == "new"
    atomic_write.write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["plan.json"]


def test_writers_that_take_a_file_name_get_a_temporary_beside_the_target(tmp_path):
    target = tmp_path / "utterance.flac"
    samples = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    with atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary != target
        sf.write(str(temporary), samples, 16000, format="FLAC", subtype="PCM_16")
        assert not target.exists()
    read, rate = sf.read(str(target), dtype="float32")
    assert rate == 16000 and np.allclose(read, samples, atol=1 / 32768)


def test_two_writers_of_one_target_do_not_share_a_temporary(tmp_path):
    target = tmp_path / "cache.json"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        first.write_text("first")
        second.write_text("second")
    assert target.read_text() == "first"  # the outer block ends last
