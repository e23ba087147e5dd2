"""How every command and stage runs: under cli_main, which turns a fault the user can fix into one line."""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

from textrnn import signals
from textrnn.errors import UserError

F = TypeVar("F", bound=Callable[..., object])

# Set for processes launched by another textrnn process (DDP ranks): the launcher reports an interrupt.
RELAUNCHED = "TEXTRNN_RELAUNCHED"

# Write faults the user fixes by freeing or choosing another place, not by changing code.
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _say(line: str) -> None:
    # Under torchrun every rank meets the same fault: rank 0 alone says it.
    if os.environ.get("RANK", "0") == "0":
        with contextlib.suppress(OSError):  # stderr itself is gone: the exit status still tells
            print(line, file=sys.stderr, flush=True)


def cli_main(func: F) -> F:
    """Run ``func``; a UserError, Ctrl-C, SIGTERM, a full disk or no memory ends in one line and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        previous = signals.install()
        # The garbage collector walks every object it tracks, and torch's import alone leaves hundreds
        # of thousands, which live as long as the process: out of its sight, they cost no collection
        # while the command runs and none at exit (about 0.6 s of each torch stage's exit here).
        gc.freeze()
        try:
            return func(*args, **kwargs)
        except UserError as error:
            _say("error: " + " ".join(str(error).split()))
            sys.exit(1)
        except KeyboardInterrupt as interrupt:
            signum = getattr(interrupt, "signum", signal.SIGINT)
            by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
            if not os.environ.get(RELAUNCHED):  # a DDP rank: its launcher, which stopped it, says it once
                _say(
                    f"interrupted{by}: stopped before finishing; the previous outputs are intact "
                    f"and no temporary file is left"
                )
            sys.exit(128 + signum)
        except OSError as error:
            if error.errno not in NO_SPACE:
                raise
            where = f" ({error.filename})" if error.filename else ""
            _say(f"error: no space left on the device{where}: {os.strerror(error.errno)}; free some space and rerun")
            sys.exit(1)
        except MemoryError:
            _say(
                "error: out of memory; lower the batch sizes or the model sizes in params.yaml, "
                "or use a machine with more memory"
            )
            sys.exit(1)
        finally:
            signals.restore(previous)
            gc.freeze()

    return wrapper  # type: ignore[return-value]
