"""SIGINT, SIGTERM and SIGHUP as an exception in the main process, held during renames, default in workers."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, TypedDict

# SIGHUP: the terminal closed, or an ssh session dropped; its default action would leave every temporary behind.
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP: unwinds like Ctrl-C, so every temporary output is deleted on the way."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# What signal.signal takes and returns: a function, SIG_DFL / SIG_IGN, or None (set outside Python).
Handler = Callable[[int, FrameType | None], Any] | int | None


class _Held(TypedDict):
    depth: int  # nested interrupts_held blocks
    pending: int | None  # the signal caught meanwhile


_held: _Held = {"depth": 0, "pending": None}


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Delay a signal caught by our handler to the end of the block (for renames that belong together)."""
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
        if _held["depth"] == 0 and _held["pending"] is not None:
            signum, _held["pending"] = _held["pending"], None
            raise Interrupted(signum)


def _handler(signum, frame):
    if _held["depth"]:
        _held["pending"] = signum
        return
    raise Interrupted(signum)


def install() -> dict[int, Handler] | None:
    """Make SIGINT, SIGTERM and SIGHUP raise Interrupted in this process; return the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return None
    # A SIGHUP ignored on purpose (`nohup`) stays ignored: the run is meant to outlive its terminal.
    keep = {signal.SIGHUP} if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN else set()
    return {signum: signal.signal(signum, _handler) for signum in HANDLED if signum not in keep}


def restore(previous: dict[int, Handler] | None) -> None:
    for signum, handler in (previous or {}).items():
        signal.signal(signum, handler)


def default_in_worker() -> None:
    """Give a forked worker the default actions back.

    A worker that inherited our handler turns the SIGTERM of Pool.terminate into an exception
    that can be swallowed while it waits on the task queue's lock, and the parent waits forever.
    With the default action, the signal simply ends it.
    """
    for signum in HANDLED:
        if signal.getsignal(signum) is _handler:  # an ignored SIGHUP (`nohup`) stays ignored
            signal.signal(signum, signal.SIG_DFL)
