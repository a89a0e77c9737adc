"""A prompt is one thing to say: the transcript and the text handed to the engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    text: str  # the transcript, normalized (inside the default alphabet)
    spoken: str  # what the engine reads; differs from `text` where engines misread ("a" -> "ay")
