"""speechprune.lm.files: the LM directory layout and the tuned decoder weights."""

from __future__ import annotations

import pytest

from speechprune.lm.files import LanguageModelError, LmFiles, read_decoder_params, write_decoder_params


def test_decoder_params_round_trip_with_their_provenance(tmp_path):
    assert read_decoder_params(tmp_path) is None
    write_decoder_params(tmp_path, 1.25, -0.5, dev_wer=12.0)
    assert read_decoder_params(tmp_path) == {"alpha": 1.25, "beta": -0.5, "dev_wer": 12.0}
    # The lexicon-free decoder keeps weights of its own.
    assert read_decoder_params(tmp_path, lexicon=False) is None
    write_decoder_params(tmp_path, 0.75, 2.0, lexicon=False)
    assert read_decoder_params(tmp_path, lexicon=False) == {"alpha": 0.75, "beta": 2.0}
    assert read_decoder_params(tmp_path)["alpha"] == 1.25


def test_a_broken_decoder_params_file_is_named(tmp_path):
    (tmp_path / "decoder.json").write_text('{"alpha": 1.0}')
    with pytest.raises(LanguageModelError, match=r"decoder\.json: not a decoder parameter file"):
        read_decoder_params(tmp_path)


def test_require_names_the_missing_file_and_the_build_command(tmp_path):
    files = LmFiles(tmp_path)
    with pytest.raises(LanguageModelError, match=rf"{tmp_path}/lm\.bin does not exist.*lm build"):
        files.require(files.binary)
