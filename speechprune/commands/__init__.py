"""One Hydra application per command; `speechprune.cli` dispatches to them."""

from pathlib import Path

# The repository's conf/ (the package is installed in editable mode, see the Makefile). An
# absolute path: Hydra would read a relative one as a Python package path when a command is
# started through the console script.
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
