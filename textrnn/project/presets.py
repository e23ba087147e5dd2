"""Presets: files ``presets/<name>.yaml`` with params.yaml's sections and keys, holding only what they change.

``textrnn preset NAME`` prints them as DVC's ``-S`` options, one shell word each, so that one command
runs an experiment at a preset: ``dvc exp run $(textrnn preset recommended)``. ``--run`` and ``--queue``
call ``dvc exp run`` themselves (no shell in between), ``--apply`` writes them into params.yaml
instead (its comments kept), for plain ``dvc repro``.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

from textrnn.core.errors import UserError
from textrnn.core.filesystem import atomic_path
from textrnn.core.params import PARAMS_FILE, SCHEMA, read_params, validate

PRESETS_DIR = Path("presets")


def preset_path(name: str, directory: Path = PRESETS_DIR) -> Path:
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(directory).glob("*.yaml")) if Path(directory).is_dir() else []
        raise UserError(f"{path}: no such preset; known presets: {', '.join(known) or 'none'}")
    return path


def load_preset(path: Path, params_path: Path = PARAMS_FILE) -> dict[str, dict[str, Any]]:
    """The preset's values by section, each key known and each section, merged into params.yaml's, valid."""
    preset = read_params(path)
    params = read_params(params_path)
    if not isinstance(preset, dict):
        raise UserError(f"{path}: a preset is a mapping of params.yaml's sections to the keys it changes")
    for section, values in preset.items():
        if section not in SCHEMA:
            raise UserError(f"{path}: unknown section '{section}'; params.yaml has {', '.join(SCHEMA)}")
        if not isinstance(values, dict) or not values:
            raise UserError(f"{path}: section '{section}' must map keys of params.yaml's '{section}' to values")
        validate(section, {**params.get(section, {}), **values}, source=str(path))
    return preset


# A string of these characters alone, that YAML reads back as itself, DVC's -S (Hydra's override
# grammar) reads as that string unquoted; any other (non-ASCII, ~ , = ( ) [ ] ' $ ...) is quoted.
PLAIN_STRING = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
# Words Hydra reads as a float or a bool in any letter case, where YAML reads a string.
HYDRA_WORDS = {"nan", "inf", "true", "false", "null"}


def _hydra_quoted(text: str) -> str:
    """``text`` in Hydra's double quotes: a quote and the backslashes before it (or before the closing
    quote) escaped, and ``${`` (an interpolation) escaped; other backslashes stay literal."""
    text = re.sub(r'(\\*)"', lambda m: m.group(1) * 2 + '\\"', text)
    text = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", text)
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return f'"{text}"'


def _hydra_text(value: Any) -> str:
    """``value`` as Hydra's override grammar reads it back: numbers, true/false, null; strings plain or
    quoted; lists ``[1,4,16]`` and mappings ``{a:1}`` (keys plain) without spaces."""
    if isinstance(value, str):
        plain = PLAIN_STRING.fullmatch(value) and value.lower() not in HYDRA_WORDS and read_scalar(value) == value
        return value if plain else _hydra_quoted(value)
    if isinstance(value, list):
        return "[" + ",".join(_hydra_text(item) for item in value) + "]"
    if isinstance(value, dict):
        for key in value:
            if not (isinstance(key, str) and PLAIN_STRING.fullmatch(key)):
                raise UserError(
                    f"the preset mapping key {key!r} is not a plain name (letters, digits, _ . / -), which DVC's "
                    f"-S cannot pass; rename it"
                )
        return "{" + ",".join(f"{key}:{_hydra_text(item)}" for key, item in value.items()) + "}"
    return json.dumps(value)


def _yaml_value(value: Any) -> str:
    """``value`` as DVC's -S reads it back (Hydra's override grammar), in one shell word."""
    text = _hydra_text(value)
    if any(c.isspace() for c in text):
        raise UserError(
            f"the preset value {value!r} holds whitespace, which a shell splits in `$(...)`; "
            f"use `textrnn preset NAME --run` (or --queue, or --apply) instead"
        )
    return text


def read_scalar(text: str) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(io.StringIO(text))


def as_set_options(preset: dict[str, dict[str, Any]]) -> list[str]:
    """``["-S", "train.cell=gru", ...]`` for ``dvc exp run``."""
    options = []
    for section, values in preset.items():
        for key, value in values.items():
            options += ["-S", f"{section}.{key}={_yaml_value(value)}"]
    return options


def glob_words(options: list[str]) -> list[str]:
    """The words of ``options`` that hold a shell pattern character: unquoted in ``$(...)`` a shell
    expands them to the names of matching files, where any exist."""
    return [word for word in options if any(c in word for c in "*?[")]


def apply(preset: dict[str, dict[str, Any]], params_path: Path = PARAMS_FILE) -> None:
    """Write the preset's values into ``params_path``, keeping its comments and order."""
    from ruamel.yaml import YAML

    params_path = Path(params_path)
    read_params(params_path)  # a missing, unreadable or broken params.yaml is named in one line
    if not os.access(params_path, os.W_OK) or not params_path.stat().st_mode & 0o222:
        # Renaming the new file over it would succeed in a writable folder: respect the read-only mark.
        raise UserError(f"{params_path}: is read-only; make it writable (chmod u+w {params_path}) to apply a preset")
    yaml = YAML()  # round-trip: comments and key order survive
    document = yaml.load(params_path.read_text(encoding="utf-8"))
    for section, values in preset.items():
        for key, value in values.items():
            document[section][key] = value
    with atomic_path(params_path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        yaml.dump(document, handle)
