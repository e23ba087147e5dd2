"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from textrnn.errors import UserError
from textrnn.signals import interrupts_held

_UMASK = os.umask(0)
os.umask(_UMASK)

# Faults of the place written to, not of the data: name the output and what to do.
_WRITE_FAULTS = {
    errno.ENOSPC: "no space left on the device; free some space and rerun",
    errno.EDQUOT: "disk quota exceeded; free some space and rerun",
    errno.EFBIG: "file too large for this file system or limit",
    errno.EROFS: "read-only file system; run from a writable checkout",
}


# The temporary folders of the atomic_dir blocks now open -> their outputs: a fault names what the user knows.
_folders_in_progress: dict[Path, Path] = {}


def _final_name(path: Path) -> Path:
    for tmp, final in _folders_in_progress.items():
        if path == tmp or tmp in path.parents:
            return final / path.relative_to(tmp)
    return path


@contextlib.contextmanager
def _named_write_faults(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        if error.errno not in _WRITE_FAULTS:
            raise
        raise UserError(f"cannot write {_final_name(path)}: {_WRITE_FAULTS[error.errno]}") from None


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it."""
    path = Path(path)
    with _named_write_faults(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the final file gets the usual mode
        try:
            yield tmp
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def write_json(path: Path, data: object, indent: int = 2) -> None:
    """Strict JSON (no NaN or Infinity, which browsers' parsers reject), atomically."""
    text = json.dumps(data, indent=indent, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; on success it replaces ``path``, else it is deleted."""
    path = Path(path)
    with _named_write_faults(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
        os.chmod(tmp, 0o777 & ~_UMASK)
        _folders_in_progress[tmp] = _final_name(path)
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            del _folders_in_progress[tmp]
        old = path.with_name(f".{path.name}.old")
        with interrupts_held():  # a Ctrl-C between the two renames would leave no ``path`` at all
            shutil.rmtree(old, ignore_errors=True)
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
