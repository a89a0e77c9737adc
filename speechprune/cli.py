"""`speechprune <command> [hydra overrides]`: hands each command to its Hydra app.

Every command is a Hydra application with its own primary config in `conf/`, so all of them
accept `key=value` overrides, `--cfg job` to print the composed config, and `-m` for sweeps.
"""

from __future__ import annotations

import importlib
import sys

# command words -> module under speechprune.commands holding a Hydra `main`
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("data", "build"): ("data_build", "synthesize an embedded corpus (corpus=tiny|sentences)"),
    ("data", "check"): ("data_check", "validate a manifest and list every problem with its line"),
    ("train",): ("train", "train a DeepSpeech2 model (optionally pruned) and evaluate it"),
    ("predict",): ("predict", "predict a pruning schedule's final sparsity without training"),
    ("evaluate",): ("evaluate", "WER/CER of a run or checkpoint on a manifest"),
    ("transcribe",): ("transcribe", "print transcripts of audio files"),
    ("lm", "build"): ("lm_build", "build a KenLM n-gram language model from transcripts or text"),
    ("lm", "tune"): ("lm_tune", "tune beam search's LM weight and word bonus on a dev set"),
    ("export",): ("export", "write a compact (sparse) deployable model file"),
    ("report",): ("report", "table, plots and size/WER fits across run or sweep directories"),
}


def usage() -> str:
    lines = ["usage: speechprune <command> [key=value ...] [-m] [--cfg job]", "", "commands:"]
    for words, (_, summary) in COMMANDS.items():
        lines.append(f"  {' '.join(words):<12} {summary}")
    lines.append("")
    lines.append("Every command takes Hydra overrides; `speechprune <command> --help` lists its config.")
    return "\n".join(lines)


def find_command(argv: list[str]) -> tuple[tuple[str, ...], str] | None:
    """The longest command whose words start `argv`, and its module name."""
    for words in sorted(COMMANDS, key=len, reverse=True):
        if tuple(argv[: len(words)]) == words:
            return words, COMMANDS[words][0]
    return None


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        sys.exit(0 if argv else 2)
    found = find_command(argv)
    if found is None:
        print(f"speechprune: unknown command {' '.join(argv[:2])!r}\n", file=sys.stderr)
        print(usage(), file=sys.stderr)
        sys.exit(2)
    words, module_name = found
    module = importlib.import_module(f"speechprune.commands.{module_name}")
    # Hydra reads sys.argv itself: leave it the overrides only, and name the app after the
    # command so its log file and job name say which command ran.
    sys.argv = ["speechprune-" + "-".join(words)] + argv[len(words):]
    module.main()


if __name__ == "__main__":
    main()
