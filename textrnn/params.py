"""Read one stage's section of params.yaml and check it before any work is done."""
from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import yaml

from textrnn.errors import UserError

PARAMS_FILE = Path("params.yaml")


class _Loader(yaml.SafeLoader):
    """YAML 1.2 floats, as DVC reads params.yaml: ``1e-3`` is a number, not the string '1e-3'."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

# A check returns None when the value is fine, else what is allowed.
Check = Callable[[Any], Optional[str]]


def _integer(minimum: int, nullable: bool = False) -> Check:
    def check(value):
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"an integer >= {minimum}" + (" or null" if nullable else "")
        return None
    return check


def _number(low: float, high: Optional[float] = None, nullable: bool = False, closed_low: bool = False) -> Check:
    def check(value):
        if value is None and nullable:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value >= low if closed_low else value > low) and (high is None or value < high)
        if not ok:
            bound = f"{'[' if closed_low else '('}{low}, {high})" if high is not None else f"{'>=' if closed_low else '>'} {low}"
            return f"a number in {bound}" if high is not None else f"a number {bound}" + (" or null" if nullable else "")
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


def _boolean(value) -> Optional[str]:
    return None if isinstance(value, bool) else "true or false"


def _workers(value) -> Optional[str]:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return None
    return "'auto' or an integer >= 1"


def _device(value) -> Optional[str]:
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

SCHEMA: Dict[str, Dict[str, Check]] = {
    "download": {
        "dataset": _text(),
        "hub": _text(nullable=True),
        "revision": _text(nullable=True),
        "text_column": _text(),
        "label_column": _text(),
    },
    "split": {
        "valid_size": _number(0.0, 1.0),
        "test_size": _number(0.0, 1.0),
        "seed": _integer(0),
        "valid_from": _choice("auto", "dataset", "train"),
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
        "embedding_size": _integer(1),
        "hidden_size": _integer(1),
        "lr": _number(0.0),
        "batch_size": _integer(1),
        "epochs": _integer(1),
        "seed": _integer(0),
        "device": _device,
        "clip_grad_norm": _number(0.0, nullable=True),
        "max_tokens": _integer(1, nullable=True),
        "valid_batch_size": _integer(1),
        "threads": _integer(0),
        "nproc": _integer(1),
        "recurrent_init": _choice("default", "orthogonal"),
        "embedding_init_std": _number(0.0),
        "cell": _choice("rnn", "gru", "lstm"),
        "bidirectional": _boolean,
        "readout": _choice("last", "mean", "max"),
        "dropout": _number(0.0, 1.0, closed_low=True),
        "optimizer": _choice("rmsprop", "adam", "adamw"),
        "weight_decay": _number(0.0, closed_low=True),
        "lr_schedule": _choice("constant", "linear", "cosine"),
    },
    "evaluate": {
        "batch_size": _integer(1),
        "device": _device,
    },
}


def validate(section: str, values: Any, source: str = str(PARAMS_FILE)) -> Dict[str, Any]:
    """Check ``values`` against the schema of ``section``; raise a one-line UserError naming the key."""
    schema = SCHEMA[section]
    if not isinstance(values, dict):
        raise UserError(f"{source}: section '{section}' must be a mapping of {sorted(schema)}")
    for key in values:
        if key not in schema:
            close = difflib.get_close_matches(str(key), schema, n=1)
            hint = f"; did you mean '{section}.{close[0]}'?" if close else f"; known keys: {', '.join(schema)}"
            raise UserError(f"{source}: unknown param '{section}.{key}'{hint}")
    for key, check in schema.items():
        if key not in values:
            raise UserError(f"{source}: missing param '{section}.{key}'; set it to {check(_MISSING)}")
        allowed = check(values[key])
        if allowed is not None:
            raise UserError(f"{source}: {section}.{key} = {values[key]!r} is not allowed; use {allowed}")
    return dict(values)


def load_params(section: str, path: Path = PARAMS_FILE) -> Dict[str, Any]:
    """The checked ``section`` of ``path``."""
    path = Path(path)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run from the project root") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}") from None
    if not isinstance(document, dict) or section not in document:
        raise UserError(f"{path}: no '{section}' section")
    return validate(section, document[section], str(path))
