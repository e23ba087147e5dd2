"""params.yaml: read exactly as DVC reads it, and every param checked before any work, in one line."""

from __future__ import annotations

import argparse
import errno
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT, make_dataset_dir, make_project, run

import textrnn.core.params
from textrnn.core.errors import UserError
from textrnn.core.params import SCHEMA, load_params, read_params, validate
from textrnn.data.splits import stratified_indices

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")


def dvc_reads(path: Path):
    """What DVC itself reads from ``path`` (``dvc params diff``, ``dvc exp show``, the params dependencies)."""
    from dvc.utils.serialize import load_yaml

    return load_yaml(path)


def write(tmp_path: Path, text, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def shipped_with(old: str, new: str) -> str:
    """The shipped params.yaml with one line changed."""
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    return text.replace(old, new)


# ---------------------------------------------------------------- params: the checks, case by case


def good(section: str) -> dict:
    return dict(PARAMS[section])


def test_the_shipped_params_pass_every_check():
    for section in SCHEMA:
        assert validate(section, good(section)) == PARAMS[section]
    assert set(SCHEMA) == set(PARAMS)


@pytest.mark.parametrize(
    "section, typo, meant",
    [
        ("train", "hiden_size", "hidden_size"),
        ("train", "learning_rate", None),
        ("split", "valid_sise", "valid_size"),
        ("vocab", "min_frequency", "min_freq"),
        ("evaluate", "batchsize", "batch_size"),
    ],
)
def test_an_unknown_key_is_named_with_a_suggestion(section, typo, meant):
    values = {**good(section), typo: 1}
    with pytest.raises(UserError) as error:
        validate(section, values)
    hint = f"did you mean '{section}.{meant}'?" if meant else f"known keys: {', '.join(SCHEMA[section])}"
    assert str(error.value) == f"params.yaml: unknown param '{section}.{typo}'; {hint}"


@pytest.mark.parametrize(
    "section, key, value, allowed",
    [
        # wrong types
        ("train", "hidden_size", "64", "an integer >= 1"),
        ("train", "hidden_size", 64.0, "an integer >= 1"),
        ("train", "epochs", True, "an integer >= 1"),
        ("train", "lr", "fast", "a number > 0.0"),
        ("train", "lr", "1e-3", "a number > 0.0"),  # quoted in YAML: a string, not a number
        ("split", "valid_size", [0.2], "a number in (0.0, 1.0)"),
        ("download", "dataset", 42, "a non-empty string"),
        ("download", "text_column", None, "a non-empty string"),
        ("vocab", "workers", "many", "'auto' or an integer >= 1"),
        # out of range
        ("train", "embedding_size", 0, "an integer >= 1"),
        ("train", "hidden_size", -8, "an integer >= 1"),
        ("train", "batch_size", 0, "an integer >= 1"),
        ("train", "valid_batch_size", 0, "an integer >= 1"),
        ("train", "max_tokens", 0, "an integer >= 1 or null"),
        ("train", "epochs", 0, "an integer >= 1"),
        ("train", "lr", 0, "a number > 0.0"),
        ("train", "lr", -1, "a number > 0.0"),
        ("train", "lr", float("inf"), "a number > 0.0"),
        ("train", "clip_grad_norm", 0.0, "a number > 0.0 or null"),
        ("train", "seed", -1, "an integer >= 0"),
        ("split", "valid_size", 0, "a number in (0.0, 1.0)"),
        ("split", "valid_size", 1, "a number in (0.0, 1.0)"),
        ("split", "valid_size", 1.5, "a number in (0.0, 1.0)"),
        ("split", "test_size", -0.1, "a number in (0.0, 1.0)"),
        ("vocab", "min_freq", 0, "an integer >= 1"),
        ("vocab", "max_size", 2, "an integer >= 3 or null"),
        ("vectorize", "workers", 0, "'auto' or an integer >= 1"),
        ("evaluate", "batch_size", 0, "an integer >= 1"),
        ("download", "dataset", "  ", "a non-empty string"),
        # devices
        ("train", "device", "tpu", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ("train", "device", "cuda:x", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ("evaluate", "device", 0, "'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ],
)
def test_a_bad_value_names_key_value_and_what_is_allowed(section, key, value, allowed):
    with pytest.raises(UserError) as error:
        validate(section, {**good(section), key: value})
    assert str(error.value) == f"params.yaml: {section}.{key} = {value!r} is not allowed; use {allowed}"


def test_nan_is_refused_wherever_a_number_is_expected():
    with pytest.raises(UserError, match=r"^params.yaml: train.lr = nan is not allowed; use a number > 0.0$"):
        validate("train", {**good("train"), "lr": float("nan")})


@NO_GPU
@pytest.mark.parametrize("section", ["train", "evaluate"])
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_on_a_machine_without_a_gpu_says_so(section, device):
    with pytest.raises(UserError) as error:
        validate(section, {**good(section), "device": device})
    assert str(error.value) == (
        f"params.yaml: {section}.device = {device!r} is not allowed; use 'auto' or 'cpu' (no CUDA GPU is visible here)"
    )


@pytest.mark.parametrize("section, key", [(s, k) for s in SCHEMA for k in SCHEMA[s]])
def test_a_missing_key_is_named_with_what_to_set(section, key):
    values = good(section)
    del values[key]
    with pytest.raises(UserError) as error:
        validate(section, values)
    message = str(error.value)
    assert message.startswith(f"params.yaml: missing param '{section}.{key}'; set it to ")
    assert message.endswith(SCHEMA[section][key](object()))


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("split", "valid_size", 0.5),
        ("train", "lr", 1e-6),
        ("train", "epochs", 1),
        ("train", "clip_grad_norm", None),
        ("train", "clip_grad_norm", 1),
        ("train", "max_tokens", None),
        ("vocab", "workers", "auto"),
        ("vocab", "workers", 1),
        ("vocab", "max_size", None),
        ("train", "device", "cpu"),
        ("train", "threads", 0),
    ],
)
def test_values_at_the_edges_of_what_is_allowed_pass(section, key, value):
    assert validate(section, {**good(section), key: value})[key] == value


@pytest.mark.parametrize("text, value", [("1e-3", 1e-3), ("1e38", 1e38), ("2.5E-4", 2.5e-4), ("-1e-3", None)])
def test_exponent_numbers_in_params_yaml_are_numbers_as_dvc_reads_them(tmp_path, text, value):
    # PyYAML's YAML 1.1 reads `1e-3` as the string '1e-3'; DVC (YAML 1.2) reads a number.
    path = tmp_path / "params.yaml"
    source = (ROOT / "params.yaml").read_text()
    path.write_text(source.replace("lr: 0.001", f"lr: {text}"))
    assert f"lr: {text}" in path.read_text()
    if value is None:
        with pytest.raises(UserError, match=rf"train.lr = {float(text)!r} is not allowed"):
            load_params("train", path)
    else:
        assert load_params("train", path)["lr"] == value


# ---------------------------------------------------------------- params.yaml means what DVC reads

# Scalars that YAML 1.1 (PyYAML) and YAML 1.2 (ruamel, DVC) read differently, or that look like they might.
TRICKY_SCALARS = [
    "010",
    "0o10",
    "0x1F",
    "0b101",
    "1_000",
    "0_10",
    "1:05",
    "-1:30:00",
    "190:20:30",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "Yes",
    "ON",
    "true",
    "True",
    "FALSE",
    "~",
    "null",
    "Null",
    "NULL",
    "",
    ".inf",
    "-.inf",
    "+.INF",
    ".nan",
    ".NaN",
    "1e3",
    "1e-3",
    "1E+3",
    "2.5e-4",
    "-1e-3",
    "1.5e3",
    "+12",
    "-0",
    "012.5",
    "0.",
    ".5",
    "1.",
    "2001-12-14",
    "2001-12-14 21:59:43.10 -5",
    "'010'",
    '"yes"',
    "!!str 010",
    "!!int 010",
    "!!float 1",
    "[010, yes, 1:05, 1e3]",
    "{a: 010, b: off}",
    "9" * 30,
    "-" + "9" * 30,
    "0x" + "F" * 20,
]


@pytest.mark.parametrize("scalar", TRICKY_SCALARS)
def test_a_tricky_scalar_reads_as_dvc_reads_it(tmp_path, scalar):
    path = write(tmp_path, f"train:\n  seed: {scalar}\n  other: [{scalar}]\n")
    try:
        expected = dvc_reads(path)
    except Exception:  # with ruamel.yaml.clib installed, DVC's parser refuses e.g. `[1:05]`: so must we
        with pytest.raises(UserError, match="not valid YAML"):
            read_params(path)
        return
    # repr compares types too: 1, 1.0 and True are equal in Python but not the same param.
    assert repr(read_params(path)) == repr(expected)


def test_the_shipped_params_read_as_dvc_reads_them():
    assert repr(read_params(ROOT / "params.yaml")) == repr(dvc_reads(ROOT / "params.yaml"))


@pytest.mark.parametrize("written, seed", [("010", 10), ("0o10", 8), ("0x1F", 31), ("1_000", 1000)])
def test_a_seed_is_the_number_dvc_shows(tmp_path, written, seed):
    path = write(tmp_path, shipped_with("  seed: 1 ", f"  seed: {written} "))
    assert dvc_reads(path)["train"]["seed"] == seed
    assert load_params("train", path)["seed"] == seed


@pytest.mark.parametrize(
    "line, key, value", [("text_column: text", "text_column", "yes"), ("label_column: label", "label_column", "off")]
)
def test_words_that_yaml_11_reads_as_booleans_stay_strings(tmp_path, line, key, value):
    path = write(tmp_path, shipped_with(line, f"{key}: {value}"))
    assert load_params("download", path)[key] == value == dvc_reads(path)["download"][key]


def test_a_dvc_exp_run_set_param_rewrite_reads_back_the_same_values(tmp_path):
    """`dvc exp run -S` rewrites params.yaml with ruamel: every null becomes an empty value, quotes may go."""
    from dvc.utils.hydra import apply_overrides  # what `dvc exp run -S KEY=VALUE` does to params.yaml

    path = write(
        tmp_path,
        shipped_with("text_column: text", 'text_column: "yes"')
        .replace("lr: 0.001", "lr: 1e-3")
        .replace("min_freq: 5", "min_freq: 0x5"),
    )
    before = {section: load_params(section, path) for section in SCHEMA}
    apply_overrides(path, ["train.epochs=3", "download.label_column=on"])
    rewritten = path.read_text(encoding="utf-8")
    assert re.search(r"^  max_size: *#", rewritten, re.M)  # the null is written as nothing at all
    assert re.search(r"^  text_column: yes$", rewritten, re.M)  # unquoted: YAML 1.1 would read True
    after = {section: load_params(section, path) for section in SCHEMA}
    before["train"]["epochs"], before["download"]["label_column"] = 3, "on"
    assert after == before
    assert after["vocab"]["max_size"] is None and after["train"]["clip_grad_norm"] is None
    assert all(after[section] == dvc_reads(path)[section] for section in SCHEMA)


@pytest.mark.slow
def test_the_split_stage_uses_the_seed_dvc_shows(tmp_path):
    """`split.seed: 010` is 10 for `dvc params diff` and for the stage (PyYAML would have split with seed 8)."""
    project = make_project(tmp_path / "project", make_dataset_dir(tmp_path / "dataset"))
    params = (project / "params.yaml").read_text()
    assert params.count("  seed: 42\n") == 1  # split's seed; train's is another number
    (project / "params.yaml").write_text(params.replace("  seed: 42\n", "  seed: 010\n"))
    diff = run([sys.executable, "-m", "dvc", "params", "diff", "--json"], project)
    shown = json.loads(diff.stdout)["params.yaml"]["split.seed"]
    assert (shown["old"], shown["new"]) == (42, 10)

    run([sys.executable, "stages/download.py"], project)
    run([sys.executable, "stages/split.py"], project)
    valid = pd.read_parquet(project / "data/split/valid.parquet")
    raw = pd.read_parquet(project / "data/raw/train.parquet")
    by_seed = {
        seed: raw.iloc[stratified_indices(raw["label"].to_numpy(), 0.2, seed, "valid", "raw")[1]].reset_index(drop=True)
        for seed in (8, 10)
    }
    assert valid.equals(by_seed[10])
    assert not valid.equals(by_seed[8])  # the seed matters, so the equality above means something


# ---------------------------------------------------------------- a params.yaml that cannot be read


def fails(path: Path, section: str = "train") -> str:
    with pytest.raises(UserError) as error:
        load_params(section, path)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_duplicate_key_is_refused_as_dvc_refuses_it(tmp_path):
    path = write(tmp_path, shipped_with("  seed: 1 ", "  seed: 1\n  seed: 3 "))
    with pytest.raises(Exception) as refused:
        dvc_reads(path)
    assert "duplicate key" in str(refused.value.__cause__)
    line = 1 + [n for n, text in enumerate(path.read_text().splitlines()) if text.startswith("  seed: 3 ")][0]
    assert fails(path) == (
        f"{path}: key 'seed' is given twice in one mapping (line {line}); DVC refuses that: keep one of them"
    )
    path = write(tmp_path, "train: {}\nsplit: {seed: 1, seed: 1}\n")  # even with the same value, anywhere
    assert (
        fails(path) == f"{path}: key 'seed' is given twice in one mapping (line 2); DVC refuses that: keep one of them"
    )


def test_params_yaml_that_is_not_utf8(tmp_path):
    path = write(tmp_path, b"train:\n  device: caf\xe9\n")
    assert fails(path) == f"{path}: not UTF-8 (byte 0xe9 on line 2); save it as UTF-8"


def test_params_yaml_that_is_a_folder_or_unreadable(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").mkdir()
    assert fails(tmp_path / "params.yaml") == f"{tmp_path / 'params.yaml'}: is a folder, not a file"
    # The tests run as root, who may read any file: make the read itself fail with EACCES.
    path = write(tmp_path, "train: {}\n", "locked.yaml")

    def open_(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(file))

    monkeypatch.setattr(textrnn.core.params, "open", open_, raising=False)
    assert fails(path) == (
        f"cannot read {path}: permission denied; make it readable (chmod/chown) or run as a user who may read it"
    )


@pytest.mark.slow
@pytest.mark.parametrize("text", ["[" * 100_000, "{a: " * 100_000, "- " * 100_000, "a: " + "[" * 600 + "1" + "]" * 600])
def test_deeply_nested_yaml_is_one_line(tmp_path, text):
    path = write(tmp_path, text)
    assert fails(path) == f"{path}: nested too deeply to read; params.yaml holds sections of plain key: value pairs"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "~\n"])
def test_an_empty_params_yaml(tmp_path, text):
    path = write(tmp_path, text)
    assert fails(path) == f"{path}: is empty; it needs a 'train' section"


@pytest.mark.parametrize(
    "text, kind",
    [
        ("- train\n", "a list"),
        ("42\n", "a number"),
        ("just words\n", "a string"),
        ("[]\n", "a list"),
        ("0\n", "a number"),
        ("false\n", "a boolean"),
    ],
)
def test_a_top_level_that_is_not_a_mapping(tmp_path, text, kind):
    path = write(tmp_path, text)
    assert fails(path) == f"{path}: holds {kind}, not a mapping of sections such as 'train:'"


def test_params_yaml_that_is_not_yaml_or_lacks_a_section(tmp_path):
    path = write(tmp_path, "train:\n  lr: [0.1\n")
    assert re.fullmatch(rf"{re.escape(str(path))}: not valid YAML \(line 3\): .+", fails(path))
    path = write(tmp_path, "train:\n  lr: !!python/object:os.system x\n")
    assert re.fullmatch(rf"{re.escape(str(path))}: not valid YAML \(line 2\): .*python/object:os.system.*", fails(path))
    path = write(tmp_path, "train: {}\n---\ntrain: {}\n")
    assert (
        fails(path)
        == f"{path}: not valid YAML (line 2): expected a single document in the stream, but found another document"
    )
    path = write(tmp_path, "train:\n  seed: 2001-13-45\n")  # ruamel lets this ValueError through
    assert fails(path) == f"{path}: not valid YAML (ValueError: month must be in 1..12)"
    path = write(tmp_path, "train:\n  seed: !!bool maybe\n")
    assert fails(path) == f"{path}: not valid YAML (KeyError: 'maybe')"
    path = write(tmp_path, "train:\n  lr: \x00\n")
    assert fails(path).startswith(f"{path}: not valid YAML (")
    path = write(tmp_path, "evaluate:\n  batch_size: 4\n")
    assert fails(path) == f"{path}: no 'train' section"
    assert fails(tmp_path / "nowhere.yaml") == f"{tmp_path / 'nowhere.yaml'}: not found; run from the project root"


def test_an_integer_too_long_for_python_is_one_line(tmp_path):
    digits = sys.get_int_max_str_digits() + 1
    path = write(tmp_path, "split:\n  seed: 1\ntrain:\n  note: " + "9" * digits + "\n")
    assert fails(path) == (
        f"{path}: an integer of more than {digits - 1} digits (line 4); params take integers of at most 64 bits"
    )
    # In hex it reads (Python limits decimal conversions only), and is too long to print in decimal.
    path = write(tmp_path, shipped_with("  seed: 42\n", "  seed: 0x" + "F" * 5000 + "\n"))
    assert fails(path, "split") == (
        f"{path}: split.seed = <an integer of 20000 bits> is not allowed; use an integer in [0, {SEED}]"
    )
    path = write(tmp_path, shipped_with("  seed: 42\n", "  seed: 42\n  ? 0x" + "F" * 5000 + "\n  : 1\n"))
    assert fails(path, "split").startswith(f"{path}: unknown param 'split.<an integer of 20000 bits>'; known keys: ")


# ---------------------------------------------------------------- integers: bounded so numpy and torch never overflow

SEED = 2**32 - 1
COUNT = 2**31 - 1
SIZE = 2**24
PARALLEL = 1024


@pytest.mark.parametrize(
    "section, key, low, high",
    [
        ("split", "seed", 0, SEED),
        ("train", "seed", 0, SEED),
        ("train", "embedding_size", 1, SIZE),
        ("train", "hidden_size", 1, SIZE),
        ("train", "batch_size", 1, COUNT),
        ("train", "valid_batch_size", 1, COUNT),
        ("train", "epochs", 1, COUNT),
        ("train", "max_tokens", 1, COUNT),
        ("train", "threads", 0, PARALLEL),
        ("train", "nproc", 1, PARALLEL),
        ("vocab", "min_freq", 1, COUNT),
        ("vocab", "max_size", 3, COUNT),
        ("evaluate", "batch_size", 1, COUNT),
    ],
)
@pytest.mark.parametrize("excess", [1, 2**64, 10**50], ids=["1", "2**64", "10**50"])
def test_each_integer_param_has_an_upper_bound(section, key, low, high, excess):
    assert validate(section, {**good(section), key: high})[key] == high
    value = high + excess
    nullable = " or null" if key in ("max_tokens", "max_size") else ""
    with pytest.raises(UserError) as error:
        validate(section, {**good(section), key: value})
    assert str(error.value) == (
        f"params.yaml: {section}.{key} = {value} is not allowed; use an integer in [{low}, {high}]{nullable}"
    )


@pytest.mark.parametrize("section", ["vocab", "vectorize"])
def test_workers_have_an_upper_bound(section):
    assert validate(section, {**good(section), "workers": PARALLEL})["workers"] == PARALLEL
    for value in (PARALLEL + 1, COUNT):
        with pytest.raises(UserError) as error:
            validate(section, {**good(section), "workers": value})
        assert str(error.value) == (
            f"params.yaml: {section}.workers = {value} is not allowed; use 'auto' or an integer in [1, {PARALLEL}]"
        )


def test_thread_counts_share_one_bound_with_predict(capsys):
    """train.threads 2**31 - 1 once reached libgomp, which asked for 463856469096 bytes; predict --threads
    2**31 overflowed torch's C int. Both stop at PARALLEL_MAX, one constant."""
    from textrnn.core.params import PARALLEL_MAX
    from textrnn.scoring.predict import add_arguments

    assert PARALLEL_MAX == PARALLEL
    with pytest.raises(UserError) as error:
        validate("train", {**good("train"), "threads": COUNT})
    assert str(error.value) == f"params.yaml: train.threads = {COUNT} is not allowed; use an integer in [0, {PARALLEL}]"
    parser = argparse.ArgumentParser(prog="textrnn predict")
    add_arguments(parser)
    assert parser.parse_args(["--threads", str(PARALLEL), "--batch-size", str(COUNT)]).threads == PARALLEL
    for option, value, bound in [
        ("--threads", PARALLEL + 1, f"[0, {PARALLEL}]"),
        ("--threads", 2**31, f"[0, {PARALLEL}]"),
        ("--batch-size", COUNT + 1, f"[1, {COUNT}]"),
        ("--batch-size", 10**20, f"[1, {COUNT}]"),
    ]:
        with pytest.raises(SystemExit):
            parser.parse_args([option, str(value)])
        last = capsys.readouterr().err.splitlines()[-1]
        assert last == f"textrnn predict: error: argument {option}: must be a whole number in {bound}, got '{value}'"


@pytest.mark.parametrize(
    "key, value",
    [("lr", 2**64), ("lr", 10**400), ("clip_grad_norm", -(2**70)), ("embedding_init_std", 2**63)],
    ids=["2**64", "10**400", "-2**70", "2**63"],
)
def test_a_number_param_takes_integers_of_64_bits_at_most(key, value):
    with pytest.raises(UserError) as error:
        validate("train", {**good("train"), key: value})
    message = str(error.value)
    assert message.startswith(f"params.yaml: train.{key} = ")
    assert message.endswith(" (integers of at most 64 bits)")
    assert len(message) < 250  # a 400-digit value is shortened
    assert validate("train", {**good("train"), key: 2**63 - 1 if value > 0 else 1})


def test_a_huge_seed_in_the_file_is_named(tmp_path):
    path = write(tmp_path, shipped_with("  seed: 42\n", f"  seed: {2**64}\n"))
    assert fails(path, "split") == f"{path}: split.seed = {2**64} is not allowed; use an integer in [0, {SEED}]"
    path = write(tmp_path, shipped_with("  seed: 42\n", "  seed: 0x1_0000_0000\n"))
    assert fails(path, "split") == f"{path}: split.seed = {2**32} is not allowed; use an integer in [0, {SEED}]"


# ---------------------------------------------------------------- through a stage: one line, nothing touched


@pytest.fixture(scope="module")
def bare_project(tmp_path_factory) -> Path:
    """A project copy with no outputs yet: the stages fail on params before they read anything."""
    base = tmp_path_factory.mktemp("params")
    return make_project(base / "project", make_dataset_dir(base / "dataset"), git=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    "content, expected",
    [
        (b"split:\n  seed: \xff\n", "params.yaml: not UTF-8 (byte 0xff on line 2); save it as UTF-8"),
        (
            b"[" * 100_000,
            "params.yaml: nested too deeply to read; params.yaml holds sections of plain key: value pairs",
        ),
        (
            b"split:\n  seed: 1\n  seed: 2\n",
            "params.yaml: key 'seed' is given twice in one mapping (line 3); DVC refuses that: keep one of them",
        ),
        (b"", "params.yaml: is empty; it needs a 'split' section"),
        (b"- split\n", "params.yaml: holds a list, not a mapping of sections such as 'split:'"),
        (
            b"split:\n  seed: 1" + b"0" * 5000 + b"\n",
            f"params.yaml: an integer of more than {sys.get_int_max_str_digits()} digits (line 2); "
            f"params take integers of at most 64 bits",
        ),
    ],
    ids=["not-utf8", "nested", "duplicate", "empty", "list", "long-integer"],
)
def test_a_stage_says_what_is_wrong_with_params_yaml_in_one_line(bare_project, content, expected):
    params = bare_project / "params.yaml"
    original = params.read_bytes()
    params.write_bytes(content)
    try:
        result = run([sys.executable, "stages/split.py"], bare_project, check=False)
    finally:
        params.write_bytes(original)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {expected}"]
    assert result.stdout == ""
    assert not (bare_project / "data/split").exists()


@pytest.mark.slow
def test_a_folder_named_params_yaml_through_a_stage(bare_project):
    params = bare_project / "params.yaml"
    original = params.read_bytes()
    params.unlink()
    params.mkdir()
    try:
        result = run([sys.executable, "stages/split.py"], bare_project, check=False)
    finally:
        params.rmdir()
        params.write_bytes(original)
    assert result.stderr.splitlines() == ["error: params.yaml: is a folder, not a file"]
    assert result.returncode == 1
