"""Utterance lists ("manifests"): reading and writing them.

The native format is NeMo-style JSON lines, one utterance per line:
`{"audio_filepath": ..., "duration": seconds, "text": ...}` (extra keys such as "speaker" are
kept). Relative audio paths are relative to the manifest's folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Utterance:
    audio_filepath: str  # absolute path
    duration: float  # seconds
    text: str  # transcript as found in the corpus (normalized later)
    source: str = ""  # "file:line" of the manifest entry, for error messages
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def read_jsonl(path: str | Path) -> list[Utterance]:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    utterances = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                entry = json.loads(line)
                audio = entry.pop("audio_filepath")
                duration = float(entry.pop("duration"))
                text = str(entry.pop("text"))
            except json.JSONDecodeError as error:
                raise ManifestError(f"{where}: not valid JSON ({error.msg})") from None
            except KeyError as error:
                raise ManifestError(f"{where}: missing key {error.args[0]!r}") from None
            except (TypeError, ValueError):
                raise ManifestError(f"{where}: 'duration' must be a number of seconds") from None
            audio_path = Path(audio)
            if not audio_path.is_absolute():
                audio_path = path.parent / audio_path
            utterances.append(Utterance(str(audio_path), duration, text, where, entry))
    return utterances


def write_jsonl(utterances: Iterable[Utterance], path: str | Path, relative: bool = True) -> None:
    """Write a JSON-lines manifest atomically; audio paths relative to its folder if `relative`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        for utterance in utterances:
            audio = Path(utterance.audio_filepath)
            if relative:
                try:
                    audio = audio.resolve().relative_to(path.parent.resolve())
                except ValueError:
                    pass
            entry = {"audio_filepath": str(audio), "duration": round(utterance.duration, 4),
                     "text": utterance.text, **utterance.extra}
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    temporary.replace(path)
