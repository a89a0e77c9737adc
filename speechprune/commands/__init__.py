"""One Hydra application per command; `speechprune.cli` dispatches to them."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path

# The repository's conf/ (the package is installed in editable mode, see the Makefile). An
# absolute path: Hydra would read a relative one as a Python package path when a command is
# started through the console script.
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def compose_config(config_name: str, overrides: list[str]):
    """The config a command would run with, composed outside a Hydra app (for scripts and
    tests): `compose_config("train", ["experiment=quickstart"])`."""
    from hydra import compose, initialize_config_dir

    from speechprune.config import register_configs
    from speechprune.pruning import register_method_configs

    register_configs()
    register_method_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


@contextlib.contextmanager
def one_line_errors(command: str, *errors: type[BaseException]):
    """Inside, an exception of `errors` (a bad setting or input: its message names the key or
    the file) ends `speechprune <command>` with that one line on stderr and exit status 1
    instead of a traceback; so does a bad utterance under data.bad_input=error
    (BadUtteranceError, which names the manifest line), wherever it is read. HYDRA_FULL_ERROR=1
    keeps the traceback, as for Hydra's own errors."""
    try:
        yield
    except BaseException as error:
        if not (isinstance(error, errors) or _is_bad_utterance(error)):
            raise
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        _close_progress_bars()
        sys.exit(f"speechprune {command}: {error_message(error)}")


def _close_progress_bars() -> None:
    """Close the progress bars an error left open, so that the error starts its own line (an
    open bar has no newline yet, and one closed at exit would write after the error)."""
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is None:
        return
    for bar in list(tqdm_module.tqdm._instances):
        bar.close()


def _is_bad_utterance(error: BaseException) -> bool:
    # Imported only on an error: the dataset module pulls in torch.
    from speechprune.data.dataset import BadUtteranceError

    return isinstance(error, BadUtteranceError)


# How torch's DataLoader re-raises an exception of a worker process: the same type (or a
# RuntimeError when that type cannot be built from one string) with this header, then the
# worker's traceback, whose last line is "<module>.<type>: <the original message>".
_WORKER_HEADER = re.compile(r"Caught (\w+) in DataLoader worker process \d+\.\nOriginal Traceback")


def error_message(error: BaseException) -> str:
    """The message of `error`; for one re-raised from a DataLoader worker, the original
    exception's message instead of the worker's traceback."""
    message = str(error)
    header = _WORKER_HEADER.match(message)
    if header is None:
        return message
    original = re.findall(rf"^(?:[\w.]+\.)?{header.group(1)}: (.*)$", message, flags=re.MULTILINE)
    return original[-1] if original else message


def load_recognizer(command: str, model_path: str, device: str, parallel: bool = False):
    """Recognizer.from_checkpoint for `speechprune <command>`: a missing, corrupt or foreign model
    file ends the command with one line naming it (exit status 1) instead of a traceback."""
    from speechprune.deploy.export import ExportError
    from speechprune.inference.recognizer import Recognizer
    from speechprune.model.checkpoint import CheckpointError
    from speechprune.model.device import choose_device

    with one_line_errors(command, ValueError):  # a bad `device` setting
        torch_device = choose_device(device, key="device")
    with one_line_errors(command, CheckpointError, ExportError):
        return Recognizer.from_checkpoint(model_path, torch_device, parallel=parallel)


def hydra_quote(value: str) -> str:
    """`value` as a quoted Hydra override value (paths may hold commas, spaces, brackets)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def positional_overrides(argv: list[str], keys: list[str], rest: str | None = None) -> list[str]:
    """Turn positional arguments (those without `=` that are not flags) into overrides:
    the first ones fill `keys` in order, any further ones become the list `rest`.

    `speechprune evaluate runs/x test.jsonl` -> `model_path='runs/x' manifest='test.jsonl'`.
    """
    overrides = [a for a in argv if "=" in a or a.startswith("-")]
    positional = [a for a in argv if "=" not in a and not a.startswith("-")]
    for key, value in zip(keys, positional):
        overrides.append(f"{key}={hydra_quote(value)}")
    extra = positional[len(keys):]
    if extra:
        if rest is None:
            raise SystemExit(f"unexpected arguments {extra}: give settings as key=value")
        overrides.append(f"{rest}=[{','.join(hydra_quote(v) for v in extra)}]")
    return overrides
