"""How every command and stage runs: under cli_main, which turns a fault the user can fix into one line."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from textrnn.core import signals
from textrnn.core.errors import UserError
from textrnn.core.filesystem import place_fault

F = TypeVar("F", bound=Callable[..., object])

# Set for processes launched by another textrnn process (DDP ranks): the launcher reports an interrupt.
RELAUNCHED = "TEXTRNN_RELAUNCHED"
# A file the launcher of DDP ranks names: each rank appends its one-line fault there, and the launcher
# says the first one. A rank cannot say it itself: torchrun stops the other ranks as soon as one fails,
# and the rank that would have printed may be stopped before it does.
RANK_FAULTS = "TEXTRNN_RANK_FAULTS"

# What sizes each command's memory, for the line that says it ran out. Keyed by the stage script's
# name (stages/<name>.py) or the `textrnn` command.
MEMORY_LEVERS = {
    "build_vocab": "lower vocab.workers (each holds a chunk of texts)",
    "vectorize": "lower vectorize.workers (each holds a chunk of texts)",
    "train": "lower train.batch_size / train.valid_batch_size / train.embedding_size / train.hidden_size, "
    "or set train.max_tokens",
    "evaluate": "lower evaluate.batch_size",
    "baseline": "set baseline.enabled: false (its TF-IDF matrix grows with the reviews and their words)",
    "predict": "lower --batch-size",
}


def _running() -> tuple[str, str]:
    """What runs, as a MEMORY_LEVERS key and in words: ``python stages/train.py`` is ("train", "the train
    stage"), ``python -m textrnn predict`` is ("predict", "`textrnn predict`")."""
    script = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    if script in ("__main__", "textrnn") and len(sys.argv) > 1:
        return sys.argv[1], f"`textrnn {sys.argv[1]}`"
    return script, f"the {script} stage" if script else "the command"


def _out_of_memory(error: MemoryError) -> str:
    name, words = _running()
    detail = f": {' '.join(str(error).split())}" if str(error) else ""
    lever = MEMORY_LEVERS.get(name)
    levers = f"{lever}, free memory" if lever else "free memory"
    return (
        f"error: {words} ran out of memory (MemoryError{detail}); "
        f"{levers} (close other programs), or use a machine with more memory"
    )


def say(line: str) -> None:
    faults = os.environ.get(RANK_FAULTS)
    if faults:  # a DDP rank: its launcher says the first rank's fault, once
        with contextlib.suppress(OSError), open(faults, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        return
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
        # while the command runs and none at exit (docs/decisions.md).
        gc.freeze()
        try:
            return func(*args, **kwargs)
        except UserError as error:
            say("error: " + " ".join(str(error).split()))
            sys.exit(1)
        except KeyboardInterrupt as interrupt:
            signum = getattr(interrupt, "signum", signal.SIGINT)
            by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
            if not os.environ.get(RELAUNCHED):  # a DDP rank: its launcher, which stopped it, says it once
                say(
                    f"interrupted{by}: stopped before finishing; the previous outputs are intact "
                    f"and no temporary file is left"
                )
            sys.exit(128 + signum)
        except OSError as error:
            # The last resort: the readers and writers name their own faults; this catches what they missed.
            message = place_fault(error, error.filename)
            if message is None:
                raise
            say("error: " + message)
            sys.exit(1)
        except MemoryError as error:
            say(_out_of_memory(error))
            sys.exit(1)
        finally:
            signals.restore(previous)
            gc.freeze()

    return wrapper  # type: ignore[return-value]
