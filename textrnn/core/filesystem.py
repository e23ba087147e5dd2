"""Atomic file writes (a reader sees the old file or the new one, never half of one), and the one map
from a file system fault (permissions, a full disk, a folder where a file belongs, ...) to its sentence."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from textrnn.core.errors import UserError
from textrnn.core.signals import interrupts_held

_UMASK = os.umask(0)
os.umask(_UMASK)

# Faults of the place, not of the data (errno -> what to do). Every reader and writer words them alike:
# "cannot read <file>: <what>; <what to do>" and "cannot write <output>: ...".
_ACCESS = "permission denied{where}; make {it} {able} (chmod/chown) or {instead}"
_PLACE_FAULTS = {
    errno.ENOSPC: "no space left on the device; free some space and rerun",
    errno.EDQUOT: "disk quota exceeded; free some space and rerun",
    errno.EFBIG: "file too large for this file system or limit",
    errno.EROFS: "read-only file system; run from a writable checkout",
    errno.EACCES: _ACCESS,
    errno.EPERM: _ACCESS,
    errno.EISDIR: "a folder stands where a file belongs; remove or rename that folder",
    errno.ENOTDIR: "a file stands where a folder belongs (in its path); remove or rename that file",
    errno.ELOOP: "too many levels of symbolic links (a link that points at itself?); fix the link",
    errno.EMFILE: "too many open files (this process may open {nofile}: `ulimit -n`); "
    "raise the limit, e.g. `ulimit -n 4096`, and rerun",
    errno.ENFILE: "too many open files on this machine; close some programs and rerun",
}


def _open_files_limit() -> str:
    try:
        import resource

        return str(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    except (ImportError, OSError, ValueError):
        return "only a few"


def _existing_folder(path: Path) -> Path:
    """The nearest folder of ``path``'s ancestry that exists: the one whose permissions decide a write."""
    for folder in (path, *path.parents):
        if folder.is_dir():
            return folder
    return Path(".")


def place_fault(error: OSError, path: Path | str | None, action: str = "use") -> str | None:
    """``cannot <action> <path>: <what>; <what to do>`` for a fault of the place, or None for any other error.

    ``action`` is "read", "write", or "use" when the caller cannot tell (the last resort of cli_main).
    """
    if error.errno is None:  # raised by Python code, not by the system
        return None
    what = _PLACE_FAULTS.get(error.errno)
    if what is None:
        return None
    if error.errno in (errno.EACCES, errno.EPERM):
        if action == "write" and path is not None:  # creating and renaming need the folder's permission
            where = _existing_folder(Path(path).parent)
            what = what.format(
                where=f" in {where}/", it="that folder", able="writable", instead="run from a checkout you own"
            )
        else:
            able = {"read": "readable", "write": "writable"}.get(action, "readable (writable, for an output)")
            what = what.format(where="", it="it", able=able, instead=f"run as a user who may {action} it")
    elif error.errno == errno.EMFILE:
        what = what.format(nofile=_open_files_limit())
    return f"cannot {action} {path}: {what}" if path is not None else what


def read_fault(path: Path, error: OSError) -> UserError:
    """The one line for an OSError met reading ``path`` (callers name a missing file with their own advice)."""
    return UserError(place_fault(error, path, "read") or f"cannot read {path}: {error.strerror or error}")


def access_fault(path: Path, error: BaseException) -> UserError | None:
    """``read_fault`` when reading ``path`` failed for a fault of the place (permissions, a folder where the
    file belongs, open files), None for a fault of the content: for readers whose library (pyarrow) raises
    one OSError for both."""
    if Path(path).is_dir():
        error = IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if isinstance(error, OSError) and error.errno in _PLACE_FAULTS:
        return read_fault(path, error)
    return None


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
        message = place_fault(error, _final_name(path), "write")
        if message is None:
            raise
        raise UserError(message) from None


def _in_dvc_cache(path: Path) -> bool:
    """Whether ``path`` lies in a DVC cache (``<cache>/files/md5/..``, or DVC 2's ``.dvc/cache/..``)."""
    parts = path.parts
    pairs = set(zip(parts, parts[1:], strict=False))
    return ("files", "md5") in pairs or (".dvc", "cache") in pairs


def _write_target(path: Path) -> Path:
    """Where writing ``path`` really goes: a symlinked output is written in the link's target, the link kept.

    An output moved to another disk and linked back stays there; the temporary sits beside the target,
    so the final rename stays on one file system. A link into DVC's cache (``cache.type: symlink``) is
    replaced instead, as DVC itself does: writing through it would change the cache.
    """
    if not path.is_symlink():
        return path
    target = Path(os.path.realpath(path))
    return path if _in_dvc_cache(target) else target


def _check_parents(path: Path) -> None:
    """A file where one of ``path``'s folders belongs is named, not a bare FileExistsError."""
    for folder in reversed((path.parent, *path.parent.parents)):
        if folder.exists() and not folder.is_dir():
            raise UserError(
                f"cannot write {_final_name(path)}: {folder} is a file where a folder belongs; remove or rename it"
            )


def _make_parent(path: Path) -> None:
    _check_parents(path)
    path.parent.mkdir(parents=True, exist_ok=True)


def check_writable(path: Path, folder: bool = False) -> None:
    """Fail now, in one line, if the output ``path`` (a file, or a ``folder``) could not be written later:
    before hours of work, not after. Nothing is left behind: a probe file comes and goes in the nearest
    existing folder, where writing it would first create something."""
    path = Path(path)
    with _named_write_faults(path):
        target = _write_target(path)
        _check_parents(target)
        if not folder and target.is_dir() and not target.is_symlink():
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
        where = _existing_folder(target.parent)
        fd, probe = tempfile.mkstemp(dir=where, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it."""
    path = Path(path)
    with _named_write_faults(path):
        target = _write_target(path)
        _make_parent(target)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the final file gets the usual mode
        try:
            yield tmp
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def write_json(path: Path, data: object, indent: int = 2) -> None:
    """Strict JSON (no NaN or Infinity, which browsers' parsers reject), atomically."""
    text = json.dumps(data, indent=indent, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _remove(path: Path) -> None:
    """Delete ``path`` whatever it is (folder, file or link); nothing there is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; on success it replaces ``path``, else it is deleted."""
    path = Path(path)
    with _named_write_faults(path):
        target = _write_target(path)
        _make_parent(target)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        os.chmod(tmp, 0o777 & ~_UMASK)
        _folders_in_progress[tmp] = _final_name(path)
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            del _folders_in_progress[tmp]
        old = target.with_name(f".{target.name}.old")
        with interrupts_held():  # a Ctrl-C between the two renames would leave no ``path`` at all
            _remove(old)
            moved = False
            try:
                if target.exists() or target.is_symlink():
                    os.replace(target, old)
                    moved = True
                os.replace(tmp, target)
            except BaseException:  # a rename refused (permissions): the old output goes back, the new one away
                if moved:
                    os.replace(old, target)
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            _remove(old)
