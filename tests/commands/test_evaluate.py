"""`speechprune evaluate` and `speechprune transcribe` on a real trained run."""

from __future__ import annotations

import json

from training_helpers import run_cli

from speechprune.data.manifest import read_jsonl


def test_evaluate_writes_predictions_summary_and_passes_a_loose_tolerance(trained_run, micro_corpus,
                                                                         tmp_path):
    manifest = micro_corpus / "test.jsonl"
    result = run_cli("evaluate", str(trained_run), str(manifest), "max_wer=1000",
                     f"output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    predictions = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    references = [u.text for u in read_jsonl(manifest)]
    assert [p["reference"] for p in predictions] == references
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["utterances"] == len(references)
    assert summary["word_edits"] == sum(p["word_edits"] for p in predictions)
    assert summary["wer"] == 100.0 * summary["word_edits"] / summary["words"]
    assert {"best", "median", "worst"} <= summary.keys()
    assert summary["best"]["wer"] <= summary["median"]["wer"] <= summary["worst"]["wer"]
    assert f"WER {summary['wer']:.2f}%" in result.stdout
    # A progress bar counts the utterances (on stderr, so stdout keeps the figures).
    assert f"evaluating test.jsonl:   0%|          | 0/{len(references)}" in result.stderr


def test_evaluate_exits_nonzero_when_wer_is_above_the_tolerance(trained_run, micro_corpus, tmp_path):
    # Two epochs of a tiny model are far from perfect, so a 0% tolerance must fail.
    result = run_cli("evaluate", f"model_path={trained_run}", f"manifest={micro_corpus / 'test.jsonl'}",
                     "max_wer=0", f"output_dir={tmp_path}")
    assert result.returncode == 1
    assert "FAILED: WER" in result.stderr


def test_evaluate_names_a_missing_model_or_manifest(trained_run, tmp_path):
    missing_model = run_cli("evaluate", str(tmp_path / "nope"), str(tmp_path / "m.jsonl"))
    assert missing_model.returncode != 0 and "nope: no such checkpoint" in missing_model.stderr
    assert "Traceback" not in missing_model.stderr
    missing_manifest = run_cli("evaluate", str(trained_run), str(tmp_path / "m.jsonl"))
    assert missing_manifest.returncode != 0 and "m.jsonl: manifest not found" in missing_manifest.stderr
    assert "Traceback" not in missing_manifest.stderr


def test_transcribe_prints_one_line_per_file(trained_run, micro_corpus):
    files = [u.audio_filepath for u in read_jsonl(micro_corpus / "test.jsonl")[:2]]
    result = run_cli("transcribe", str(trained_run), *files)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == files


def test_transcribe_names_a_missing_or_corrupt_audio_file_and_keeps_the_others(
        trained_run, micro_corpus, tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00not really a wave file")
    good = [u.audio_filepath for u in read_jsonl(micro_corpus / "test.jsonl")[:2]]
    missing = tmp_path / "nope.wav"
    result = run_cli("transcribe", str(trained_run), good[0], str(missing), str(corrupt), good[1])
    assert result.returncode == 1
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == good
    assert f"speechprune transcribe: {missing}: audio file not found" in result.stderr
    assert f"speechprune transcribe: {corrupt}" in result.stderr
    assert "2 of 4 files could not be read" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_exported_model_evaluates_and_transcribes_like_its_checkpoint(trained_run, micro_corpus,
                                                                        tmp_path):
    export = tmp_path / "model.spx"
    exported = run_cli("export", str(trained_run), f"out={export}")
    assert exported.returncode == 0, exported.stderr[-2000:]
    manifest = micro_corpus / "test.jsonl"
    outputs = {}
    for name, model in (("checkpoint", trained_run), ("export", export)):
        result = run_cli("evaluate", str(model), str(manifest), f"output_dir={tmp_path / name}")
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[name] = [json.loads(line)["hypothesis"] for line in
                         (tmp_path / name / "predictions.jsonl").read_text().splitlines()]
    assert outputs["export"] == outputs["checkpoint"]
    audio = read_jsonl(manifest)[0].audio_filepath
    runs = [run_cli("transcribe", str(model), audio, *threads)
            for model, threads in ((trained_run, []), (export, []), (export, ["threads=2"]))]
    transcripts = [run.stdout for run in runs]
    assert transcripts[0] == transcripts[1] == transcripts[2] and transcripts[0].startswith(audio)
    assert len(transcripts[1].splitlines()) == 1  # stdout holds transcripts only...
    assert "model.spx: rnns.0: " in runs[1].stderr  # ...the kernel of each layer is on stderr
