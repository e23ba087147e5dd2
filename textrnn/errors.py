"""User-facing errors: one clear line, never a traceback for the user's own mistake."""
from __future__ import annotations

import functools
import logging
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable[..., object])


class UserError(Exception):
    """A problem the user can fix (bad params, missing or broken input); its message is the whole story."""


def cli_main(func: F) -> F:
    """Run ``func``; turn a UserError or Ctrl-C into one line on stderr and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        try:
            return func(*args, **kwargs)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("interrupted: nothing was written; the previous outputs are intact", file=sys.stderr)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
