"""User-facing errors: one clear line, never a traceback for the user's own mistake."""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from typing import Callable, Iterator, Optional, TypeVar

F = TypeVar("F", bound=Callable[..., object])


class UserError(Exception):
    """A problem the user can fix (bad params, missing or broken input); its message is the whole story."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM under cli_main: unwinds like Ctrl-C, so every temporary output is deleted."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_held = {"depth": 0, "pending": None}


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Delay a signal caught by cli_main's handler to the end of the block (for renames that belong together)."""
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
        if _held["depth"] == 0 and _held["pending"] is not None:
            signum, _held["pending"] = _held["pending"], None
            raise Interrupted(signum)


def _install_signal_handlers() -> Optional[dict]:
    """Make SIGINT and SIGTERM raise Interrupted in this process; return the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return None
    owner = os.getpid()

    def handler(signum, frame):
        if os.getpid() != owner:  # a forked worker (token pools): die quietly, the parent reports
            os._exit(128 + signum)
        if _held["depth"]:
            _held["pending"] = signum
            return
        raise Interrupted(signum)

    return {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}


def cli_main(func: F) -> F:
    """Run ``func``; turn a UserError, Ctrl-C or SIGTERM into one line on stderr and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        previous = _install_signal_handlers()
        # Under torchrun every rank meets the same error: rank 0 alone says it.
        say = os.environ.get("RANK", "0") == "0"
        try:
            return func(*args, **kwargs)
        except UserError as error:
            if say:
                print("error: " + " ".join(str(error).split("\n")), file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt as interrupt:
            signum = getattr(interrupt, "signum", signal.SIGINT)
            by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
            if say:
                print(f"interrupted{by}: stopped before finishing; the previous outputs are intact "
                      f"and no temporary file is left", file=sys.stderr)
            sys.exit(128 + signum)
        finally:
            for signum, old in (previous or {}).items():
                signal.signal(signum, old)

    return wrapper  # type: ignore[return-value]
