"""Writing a file so that readers see the old version or the new one, never half of one.

Every file the project writes that something later reads back (checkpoints, exports, manifests,
corpus audio, plans, statistics, metrics, caches) goes through here: the content goes to a
temporary file in the target's folder, is flushed to disk, and is renamed over the target, an
atomic step on POSIX file systems. A write that fails (disk full, a killed process, an
exception in the writer) removes the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` for a writer that takes a file name (torch.save,
    soundfile, onnx.save); when the block ends without an error the file moves to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp: a name no concurrent writer of the same target can also pick.
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"
                ) -> Iterator[IO]:
    """open(path, mode) for writing ("w" or "wb"), moved into place when the block ends."""
    with atomic_path(path) as temporary:
        with open(temporary, mode, encoding=None if "b" in mode else encoding) as out:
            yield out


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as out:
        out.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as out:
        out.write(data)
