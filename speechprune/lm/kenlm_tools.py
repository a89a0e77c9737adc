"""KenLM's command-line estimators: `lmplz` (ARPA from text) and `build_binary` (ARPA to the
binary form the decoder memory-maps). `make kenlm` compiles them into the environment's bin/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from speechprune.lm.files import LanguageModelError

HOW_TO_GET = ("run `make kenlm` (compiles lmplz and build_binary from the PyPI `kenlm` source "
              "into .venv/bin), or name their folder with kenlm_bin_dir=<dir>")


def find_tool(name: str, bin_dir: str = "") -> Path:
    """Path of a KenLM executable: in `bin_dir` when given, else the running environment's
    bin/, else PATH."""
    if bin_dir:
        candidates = [Path(bin_dir) / name]
    else:
        on_path = shutil.which(name)
        candidates = [Path(sys.prefix) / "bin" / name] + ([Path(on_path)] if on_path else [])
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = bin_dir or f"{Path(sys.prefix) / 'bin'} or PATH"
    raise LanguageModelError(f"KenLM's `{name}` was not found in {where}: {HOW_TO_GET}")


def run_tool(command: list[str], stdin_path: Path | None = None) -> None:
    """Run a KenLM tool; on failure raise LanguageModelError with the tail of its output."""
    with open(stdin_path, "rb") if stdin_path else open("/dev/null", "rb") as stdin:
        done = subprocess.run(command, stdin=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise LanguageModelError(f"`{' '.join(command)}` failed (exit {done.returncode}):\n{tail}")


def estimate_arpa(text: Path, arpa: Path, order: int, memory: str, discount_fallback: bool,
                  bin_dir: str = "") -> None:
    """Estimate a modified Kneser-Ney `order`-gram LM of `text` (one sentence per line, tokens
    separated by spaces) into the ARPA file `arpa`; `memory` caps lmplz's sorting memory."""
    command = [str(find_tool("lmplz", bin_dir)), "-o", str(order), "-S", memory,
               "--arpa", str(arpa)]
    if discount_fallback:
        command.append("--discount_fallback")
    run_tool(command, stdin_path=text)


def arpa_to_binary(arpa: Path, binary: Path, bin_dir: str = "") -> None:
    """Convert an ARPA file into KenLM's binary (probing hash table) form."""
    run_tool([str(find_tool("build_binary", bin_dir)), str(arpa), str(binary)])
