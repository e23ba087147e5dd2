"""Read one stage's section of params.yaml exactly as DVC reads it, and check it before any work is done.

DVC (``dvc params diff``, ``dvc exp show``, the params dependencies of dvc.yaml) reads params.yaml with
ruamel.yaml, YAML 1.2: ``010`` is 10, ``yes`` and ``1:05`` are strings, ``1e-3`` is a number, a key given
twice is an error. The stages read it with the same parser, so a param means what DVC shows.
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from textrnn.core.errors import UserError
from textrnn.core.filesystem import read_fault

PARAMS_FILE = Path("params.yaml")

# Upper bounds that keep every integer param inside the integer types it meets downstream.
SEED_MAX = 2**32 - 1  # numpy's legacy RandomState (sklearn's random_state) takes seeds in [0, 2**32 - 1]
COUNT_MAX = 2**31 - 1  # a C int: torch's sizes and the like take nothing wider
# Threads, worker processes and ranks on one machine. A fixed number, so a params check means the same
# on every machine: above the hardware threads of the largest single machines (8 sockets x 60 cores x 2,
# or 2 x 192 x 2), and small enough that the per-thread tables of OpenMP fit in memory (libgomp asks
# for 463856469096 bytes at 2**31 - 1 threads; 1024 threads run a matmul in a few hundred MB).
PARALLEL_MAX = 1024
# A weight of size x size (or vocabulary x size, vocabulary < 2**31) float32s must count its bytes in 64 bits.
SIZE_MAX = 2**24
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# train.class_weight and baseline.class_weight: none (every row counts once) or balanced (a row of class c
# counts n / (k * n_c), n rows and n_c of class c in the train split: sklearn's class_weight="balanced").
CLASS_WEIGHTS = ("none", "balanced")

# A check returns None when the value is fine, else what is allowed.
Check = Callable[[Any], str | None]


def _integer(minimum: int, maximum: int = COUNT_MAX, nullable: bool = False) -> Check:
    def check(value):
        if value is None and nullable:
            return None
        or_null = " or null" if nullable else ""
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"an integer >= {minimum}{or_null}"
        if value > maximum:
            return f"an integer in [{minimum}, {maximum}]{or_null}"
        return None

    return check


def _number(low: float, high: float | None = None, nullable: bool = False, closed_low: bool = False) -> Check:
    def check(value):
        if value is None and nullable:
            return None
        # An integer beyond 64 bits would overflow torch's scalar arguments (and float() past 1e308).
        wide = isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not wide and math.isfinite(value)
        ok = ok and (value >= low if closed_low else value > low) and (high is None or value < high)
        if not ok:
            bound = (
                f"{'[' if closed_low else '('}{low}, {high})"
                if high is not None
                else f"{'>=' if closed_low else '>'} {low}"
            )
            allowed = (
                f"a number in {bound}" if high is not None else f"a number {bound}" + (" or null" if nullable else "")
            )
            return allowed + (" (integers of at most 64 bits)" if wide else "")
        return None

    return check


def _text(nullable: bool = False) -> Check:
    def check(value):
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value.strip():
            return "a non-empty string" + (" or null" if nullable else "")
        return None

    return check


def _choice(*allowed: str) -> Check:
    def check(value):
        return None if value in allowed else " or ".join(repr(a) for a in allowed)

    return check


def _boolean(value) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _positive_numbers(value) -> str | None:
    allowed = "a non-empty list of numbers > 0, e.g. [1, 4, 16]"
    if not isinstance(value, list) or not value:
        return allowed
    return next((allowed for item in value if _number(0.0)(item) is not None), None)


def _workers(value) -> str | None:
    if value == "auto":
        return None
    allowed = _integer(1, PARALLEL_MAX)(value)
    return None if allowed is None else f"'auto' or {allowed}"


def _device(value) -> str | None:
    import torch

    if not isinstance(value, str):
        return "'auto', 'cpu', 'cuda' or 'cuda:N'"
    if value in ("auto", "cpu"):
        return None
    if value == "cuda" or value.startswith("cuda:"):
        index = value.partition(":")[2]
        if index and not index.isdigit():
            return "'auto', 'cpu', 'cuda' or 'cuda:N'"
        if not torch.cuda.is_available():
            return "'auto' or 'cpu' (no CUDA GPU is visible here)"
        if index and int(index) >= torch.cuda.device_count():
            return f"a GPU index below {torch.cuda.device_count()}"
        return None
    return "'auto', 'cpu', 'cuda' or 'cuda:N'"


_MISSING = object()  # no check accepts it: check(_MISSING) says what is allowed

SCHEMA: dict[str, dict[str, Check]] = {
    "download": {
        "dataset": _text(),
        "hub": _text(nullable=True),
        "config": _text(nullable=True),
        "revision": _text(nullable=True),
        "text_column": _text(),
        "label_column": _text(),
    },
    "split": {
        "valid_size": _number(0.0, 1.0),
        "test_size": _number(0.0, 1.0),
        "seed": _integer(0, SEED_MAX),
        "valid_from": _choice("auto", "dataset", "train"),
        "test_from": _choice("auto", "dataset", "validation", "train"),
    },
    "vocab": {
        "min_freq": _integer(1),
        "max_size": _integer(3, nullable=True),
        "workers": _workers,
    },
    "vectorize": {
        "workers": _workers,
    },
    "train": {
        "embedding_size": _integer(1, SIZE_MAX),
        "hidden_size": _integer(1, SIZE_MAX),
        "lr": _number(0.0),
        "batch_size": _integer(1),
        "epochs": _integer(1),
        "seed": _integer(0, SEED_MAX),
        "device": _device,
        "clip_grad_norm": _number(0.0, nullable=True),
        "max_tokens": _integer(1, nullable=True),
        "valid_batch_size": _integer(1),
        "threads": _integer(0, PARALLEL_MAX),
        "nproc": _integer(1, PARALLEL_MAX),
        "recurrent_init": _choice("default", "orthogonal"),
        "embedding_init_std": _number(0.0),
        "cell": _choice("rnn", "gru", "lstm"),
        "bidirectional": _boolean,
        "readout": _choice("last", "mean", "max"),
        "dropout": _number(0.0, 1.0, closed_low=True),
        "optimizer": _choice("rmsprop", "adam", "adamw"),
        "weight_decay": _number(0.0, closed_low=True),
        "lr_schedule": _choice("constant", "linear", "cosine"),
        "patience": _integer(1, nullable=True),
        "class_weight": _choice(*CLASS_WEIGHTS),
    },
    "baseline": {
        "enabled": _boolean,
        "C": _positive_numbers,
        "class_weight": _choice(*CLASS_WEIGHTS),
    },
    "evaluate": {
        "batch_size": _integer(1),
        "device": _device,
    },
}


def validate(section: str, values: Any, source: str = str(PARAMS_FILE)) -> dict[str, Any]:
    """Check ``values`` against the schema of ``section``; raise a one-line UserError naming the key."""
    schema = SCHEMA[section]
    if not isinstance(values, dict):
        raise UserError(f"{source}: section '{section}' must be a mapping of {sorted(schema)}")
    for key in values:
        if key not in schema:
            name = key if isinstance(key, str) else _shown(key)
            close = difflib.get_close_matches(name, schema, n=1)
            hint = f"; did you mean '{section}.{close[0]}'?" if close else f"; known keys: {', '.join(schema)}"
            raise UserError(f"{source}: unknown param '{section}.{name}'{hint}")
    for key, check in schema.items():
        if key not in values:
            raise UserError(f"{source}: missing param '{section}.{key}'; set it to {check(_MISSING)}")
        allowed = check(values[key])
        if allowed is not None:
            raise UserError(f"{source}: {section}.{key} = {_shown(values[key])} is not allowed; use {allowed}")
    return dict(values)


def _shown(value: Any, limit: int = 100) -> str:
    """``repr(value)``, shortened to about ``limit`` characters."""
    try:
        text = repr(value)
    except ValueError:  # an integer (hex in the YAML) with more digits than Python will print
        return f"<an integer of {value.bit_length()} bits>" if isinstance(value, int) else "<a value too long to show>"
    return text if len(text) <= limit else f"{text[: limit // 2]}... ({len(text)} characters)"


def _parse(path: Path) -> Any:
    """The YAML document in ``path`` (None when it holds none), read as DVC reads it; else a one-line UserError."""
    try:
        with open(path, encoding="utf-8") as file:  # as DVC opens it: text mode, so "\r\n" reads as "\n"
            text = file.read()
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run from the project root") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a file") from None
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        raise UserError(
            f"{path}: not UTF-8 (byte 0x{error.object[error.start]:02x} on line {line}); save it as UTF-8"
        ) from None
    except OSError as error:
        raise read_fault(path, error) from None
    try:
        return YAML(typ="safe").load(text)  # DVC's parse_yaml: dvc/utils/serialize/_yaml.py
    except DuplicateKeyError as error:
        key = re.match(r'found duplicate key "(.*)" with value', error.problem or "")
        raise UserError(
            f"{path}: key {repr(key.group(1)) if key else ''} is given twice in one mapping"
            f"{_where(error, text, problem=False)}; DVC refuses that: keep one of them"
        ) from None
    except YAMLError as error:
        raise UserError(f"{path}: not valid YAML{_where(error, text)}") from None
    except (RecursionError, MemoryError):
        raise UserError(
            f"{path}: nested too deeply to read; params.yaml holds sections of plain key: value pairs"
        ) from None
    except Exception as error:
        # ruamel lets some failures through unwrapped: int() of more digits than Python converts,
        # date(2001, 13, 45), `!!bool maybe`, an unhashable key. Each is the file's fault.
        limit = sys.get_int_max_str_digits()
        if isinstance(error, ValueError) and "integer string conversion" in str(error):
            digits = re.search(rf"[0-9A-Fa-f_]{{{limit + 1},}}", text)
            where = f" (line {_line_at(text, digits.start())})" if digits else ""
            raise UserError(
                f"{path}: an integer of more than {limit} digits{where}; params take integers of at most 64 bits"
            ) from None
        raise UserError(f"{path}: not valid YAML ({type(error).__name__}: {_one_line(error)})") from None


def _one_line(error: Exception | str) -> str:
    return " ".join(str(error).split())


def _line_at(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _where(error: YAMLError, text: str, problem: bool = True) -> str:
    """`` (line N): what is wrong`` for a ruamel error (without what is wrong when ``problem`` is False)."""
    if isinstance(error, MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        what = ", ".join(str(part) for part in (error.context, error.problem) if part)
    else:  # a ReaderError (a character YAML does not allow) knows its position in the text
        position = getattr(error, "position", None)
        line = _line_at(text, position) if isinstance(position, int) else None
        what = str(error).split("\n")[0]
    where = f" (line {line})" if line is not None else ""
    return f"{where}: {_one_line(what or error)}" if problem else where


def read_params(path: Path = PARAMS_FILE) -> Any:
    """All of ``path`` as DVC reads it (dvc.utils.serialize.load_yaml), or a one-line UserError."""
    return _parse(Path(path)) or {}


_KINDS = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}


def load_params(section: str, path: Path = PARAMS_FILE) -> dict[str, Any]:
    """The checked ``section`` of ``path``."""
    path = Path(path)
    document = _parse(path)
    if document is None:
        raise UserError(f"{path}: is empty; it needs a '{section}' section")
    if not isinstance(document, dict):
        kind = _KINDS.get(type(document), f"a {type(document).__name__}")
        raise UserError(f"{path}: holds {kind}, not a mapping of sections such as '{section}:'")
    if section not in document:
        raise UserError(f"{path}: no '{section}' section")
    return validate(section, document[section], str(path))
