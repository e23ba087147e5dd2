"""Bad input, faults and safety: one clear line, nothing half-written, nothing unsafe loaded.

Each stage runs as the user runs it (`python stages/X.py` in a small project) and must answer a
fault with one `error: ...` line, exit non-zero, and leave every previous output as it was.
The params checks themselves are in test_params.py.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT, make_dataset_dir, make_project, run, synthetic_reviews, write_hf_parquet

import textrnn.core.params
from textrnn.core.errors import UserError
from textrnn.core.filesystem import atomic_dir, atomic_path, check_writable, write_json
from textrnn.core.runtime import cli_main
from textrnn.core.signals import interrupts_held
from textrnn.data.raw import write_raw
from textrnn.data.sources import local_source
from textrnn.data.splits import stratified_indices
from textrnn.data.vectors import EncodedSplit, SplitVectorsWriter, open_split, read_meta, write_meta
from textrnn.model import RNN, ModelConfig, load_checkpoint, save_checkpoint
from textrnn.text.vocab import Vocab
from textrnn.training import memory
from textrnn.training.loop import NonFiniteLoss, TrainConfig, train_model

STAGES = ("download", "split", "build_vocab", "vectorize", "train", "evaluate", "baseline")
OUTPUTS = ("data", "models", "plots", "metrics")
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")


# ---------------------------------------------------------------- helpers

INPUTS = {"vocab_sha256": "ab" * 32, "tokenizer": "0123456789abcdef", "max_tokens": None}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A small project after one full pipeline run: every output exists."""
    base = tmp_path_factory.mktemp("faults")
    project = make_project(base / "project", make_dataset_dir(base / "dataset"), git=False)
    for name in STAGES:
        stage(project, name, check=True)
    return project


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built project, for one test to break."""
    return Path(shutil.copytree(built, tmp_path / "project"))


def stage(project: Path, name: str, check: bool = False) -> subprocess.CompletedProcess:
    return run([sys.executable, f"stages/{name}.py"], project, check=check)


def set_param(project: Path, section: str, key: str, value: object = "<delete>") -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    if value == "<delete>":
        del params[section][key]
    else:
        params[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def snapshot(project: Path) -> dict[str, tuple[str, int]]:
    """Every output file's content hash and modification time."""
    files = {}
    for top in OUTPUTS:
        for path in sorted((project / top).rglob("*")):
            if path.is_file():
                files[str(path.relative_to(project))] = (
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                    path.stat().st_mtime_ns,
                )
    return files


def leftovers(project: Path) -> list:
    """Temporary files or folders an interrupted write could leave behind."""
    return sorted(
        str(p.relative_to(project))
        for p in project.rglob("*")
        if p.name.endswith((".tmp", ".old")) and ".dvc" not in p.parts
    )


def error_line(result: subprocess.CompletedProcess) -> str:
    """The stage's last stderr line, after checking it failed cleanly with exactly one error line."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], result.stderr
    return lines[-1]


def assert_failed_cleanly(project: Path, before: dict, result: subprocess.CompletedProcess) -> str:
    line = error_line(result)
    assert snapshot(project) == before
    assert leftovers(project) == []
    return line


# Address space for a process that must refuse a size before allocating it: torch and the stages start
# in well under this, and an attempt to allocate the refused size fails at once instead of taking the machine.
MEMORY_LIMIT_KB = 2_000_000


def in_bounded_memory(project: Path, *args: str) -> subprocess.CompletedProcess:
    """``python args...`` in ``project`` under `ulimit -v MEMORY_LIMIT_KB`."""
    command = " ".join(["exec", sys.executable, *(f"'{arg}'" for arg in args)])
    return run(["bash", "-c", f"ulimit -v {MEMORY_LIMIT_KB}; {command}"], project, check=False)


# ---------------------------------------------------------------- params: every stage checks before any work


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, section, key, value, expected",
    [
        (
            "download",
            "download",
            "text_colum",
            "text",
            "unknown param 'download.text_colum'; did you mean 'download.text_column'?",
        ),
        ("split", "split", "valid_size", 1.5, "split.valid_size = 1.5 is not allowed; use a number in (0.0, 1.0)"),
        ("build_vocab", "vocab", "min_freq", "5", "vocab.min_freq = '5' is not allowed; use an integer >= 1"),
        ("vectorize", "vectorize", "workers", 0, "vectorize.workers = 0 is not allowed; use 'auto' or an integer >= 1"),
        ("train", "train", "hiden_size", 64, "unknown param 'train.hiden_size'; did you mean 'train.hidden_size'?"),
        ("train", "train", "lr", "<delete>", "missing param 'train.lr'; set it to a number > 0.0"),
        pytest.param(
            "train",
            "train",
            "device",
            "cuda",
            "train.device = 'cuda' is not allowed; use 'auto' or 'cpu' (no CUDA GPU is visible here)",
            marks=NO_GPU,
        ),
        ("evaluate", "evaluate", "batch_size", 0, "evaluate.batch_size = 0 is not allowed; use an integer >= 1"),
    ],
)
def test_each_stage_refuses_bad_params_in_one_line_before_touching_anything(
    project, name, section, key, value, expected
):
    set_param(project, section, key, value)
    before = snapshot(project)
    result = stage(project, name)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: params.yaml: {expected}"]  # the whole of stderr
    assert result.stdout == ""
    assert snapshot(project) == before  # same bytes, same mtimes: no output was rewritten
    assert leftovers(project) == []


# ---------------------------------------------------------------- data validation


def raw_frame(n: int = 60) -> pd.DataFrame:
    return synthetic_reviews(n, seed=3)


def params_of(project: Path) -> dict:
    return yaml.safe_load((project / "params.yaml").read_text())


@pytest.mark.slow
def test_download_names_a_missing_text_column(project):
    set_param(project, "download", "text_column", "review")
    dataset = params_of(project)["download"]["dataset"]
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, "download"))
    # Both splits lack it; the first in file name order is named.
    assert line == (
        f"error: {dataset} split 'test': no column 'review' (columns: ['text', 'label']); "
        f"set download.text_column / download.label_column"
    )


@pytest.mark.slow
def test_download_refuses_labels_outside_the_classlabel(project, tmp_path):
    frame = raw_frame()
    frame.loc[[5, 9], "label"] = 7
    dataset = tmp_path / "bad_labels"
    write_hf_parquet(dataset / "train.parquet", frame, ["neg", "pos"])
    set_param(project, "download", "dataset", str(dataset))
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, "download"))
    assert line == (
        f"error: {dataset / 'train.parquet'}: label 7 is outside the classes ['neg', 'pos'] (0..1) in 2 of its "
        f"60 rows; check download.label_column or the data"
    )


@pytest.mark.slow
def test_blank_texts_are_dropped_and_counted(project, tmp_path):
    train, test = raw_frame(60), synthetic_reviews(30, seed=4)
    train["text"] = train["text"].astype(object)
    train.loc[3, "text"], train.loc[10, "text"], train.loc[11, "text"] = None, "", " \t\n "
    test.loc[0, "text"] = "   "
    dataset = tmp_path / "blanks"
    write_hf_parquet(dataset / "train.parquet", train, ["neg", "pos"])
    write_hf_parquet(dataset / "test.parquet", test, ["neg", "pos"])
    set_param(project, "download", "dataset", str(dataset))
    result = stage(project, "download", check=True)
    assert f"{dataset} split 'train': dropped 3 rows with a null, empty or whitespace-only text" in result.stderr
    assert f"{dataset} split 'test': dropped 1 rows with a null, empty or whitespace-only text" in result.stderr
    assert "(test 29, train 57 rows; classes ['neg', 'pos'])" in result.stderr  # splits in file name order
    raw_train = pd.read_parquet(project / "data/raw/train.parquet")
    expected = train.drop(index=[3, 10, 11]).reset_index(drop=True)
    assert raw_train["text"].tolist() == expected["text"].tolist()
    assert raw_train["label"].tolist() == expected["label"].tolist()
    assert len(pd.read_parquet(project / "data/raw/test.parquet")) == 29


def test_blank_texts_policy_in_the_library(tmp_path):
    frame = pd.DataFrame({"review": ["good film", None, "", "  ", "bad film"], "stars": [1, 0, 1, 0, 0]})
    write_hf_parquet(tmp_path / "dataset/train.parquet", frame)
    rows = write_raw(local_source(tmp_path / "dataset", "stars"), "review", "stars", tmp_path / "raw")
    assert rows == {"train": 2}
    out = pd.read_parquet(tmp_path / "raw/train.parquet")
    assert out["text"].tolist() == ["good film", "bad film"]
    assert out["label"].tolist() == [1, 0]
    assert json.loads((tmp_path / "raw/labels.json").read_text()) == {"names": ["0", "1"]}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["same column", "blank test split"])
def test_download_refuses_a_label_read_from_the_text_and_a_split_without_text(project, tmp_path, case):
    if case == "same column":
        set_param(project, "download", "label_column", "text")
        expected = (
            "error: download.text_column and download.label_column are both 'text': the label would be "
            "read from the text itself; name two different columns"
        )
    else:
        dataset = tmp_path / "blank_test"
        write_hf_parquet(dataset / "train.parquet", raw_frame(), ["neg", "pos"])
        blank = pd.DataFrame({"text": [" ", "", None, "\t\n"], "label": [0, 1, 0, 1]})
        write_hf_parquet(dataset / "test.parquet", blank, ["neg", "pos"])
        set_param(project, "download", "dataset", str(dataset))
        expected = (
            f"error: {dataset} split 'test': no row has a text (4 blank of 4); check download.text_column or the data"
        )
    before = snapshot(project)
    assert assert_failed_cleanly(project, before, stage(project, "download")) == expected


def write_raw_files(project: Path, train: pd.DataFrame, test: pd.DataFrame, names: list) -> None:
    raw = project / "data/raw"
    train.to_parquet(raw / "train.parquet", index=False)
    test.to_parquet(raw / "test.parquet", index=False)
    (raw / "labels.json").write_text(json.dumps({"names": names}))


@pytest.mark.slow
def test_split_refuses_to_leave_a_class_without_a_valid_row(project):
    train = synthetic_reviews(96, n_classes=2)  # 48 + 48 + 2 rows: a 20% valid split is 10 + 10 + 0
    tiny = pd.DataFrame({"text": ["a rare review", "another rare one"], "label": [2, 2]})
    write_raw_files(
        project, pd.concat([train, tiny], ignore_index=True), synthetic_reviews(30, n_classes=3), ["neg", "pos", "rare"]
    )
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, "split"))
    assert line == (
        "error: data/raw/train.parquet: class 2 ('rare') would have no row in valid (2 rows of it in "
        "all); add rows of this class, or change split.valid_size"
    )


def labels_of_counts(counts) -> np.ndarray:
    return np.concatenate([np.full(n, label) for label, n in enumerate(counts)]).astype(np.int64)


def test_stratified_split_checks_every_named_class_on_both_sides():
    with pytest.raises(UserError, match=r"^x: class 2 \('c'\) would have no row in valid \(2 rows of it in all\)"):
        stratified_indices(labels_of_counts([48, 48, 2]), 0.2, 42, "valid", "x", ["a", "b", "c"])
    with pytest.raises(UserError, match=r"^x: class 2 \('c'\) would have no row in train \(0 rows of it in all\)"):
        stratified_indices(labels_of_counts([50, 50]), 0.2, 42, "valid", "x", ["a", "b", "c"])
    with pytest.raises(UserError, match=r"^x: class 1 has 1 row; a stratified test split needs at least 2"):
        stratified_indices(labels_of_counts([50, 1]), 0.2, 42, "test", "x", ["a", "b"])
    labels = labels_of_counts([50, 50, 10])
    rest, part = stratified_indices(labels, 0.2, 42, "valid", "x", ["a", "b", "c"])
    assert sorted(set(labels[part])) == sorted(set(labels[rest])) == [0, 1, 2]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, broken",
    [
        ("split", "data/raw/train.parquet"),
        ("build_vocab", "data/split/train.parquet"),
        ("vectorize", "data/split/valid.parquet"),
    ],
)
def test_a_truncated_parquet_is_named(project, name, broken):
    path = project / broken
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, name))
    assert line.startswith(f"error: {broken}: not a readable parquet file (")
    assert line.endswith("); rerun the stage that writes it")


@pytest.mark.slow
def test_truncated_vectors_are_named_by_train(project):
    path = project / "data/vectors/train/ids.npy"
    path.write_bytes(path.read_bytes()[:-200])
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, "train"))
    assert line == (
        "error: data/vectors/train/ids.npy: corrupt or not a textrnn vector file (ValueError); "
        "rerun `dvc repro -f vectorize`"
    )


def broken_vectors(directory: Path, kind: str, marker: Path) -> Path:
    """A vectors folder with one good split, then one of its files broken as ``kind`` says; returns that file."""
    writer = SplitVectorsWriter(directory / "train")
    writer.append(np.arange(6, dtype=np.int32), np.array([2, 4]))
    writer.close(np.array([0, 1]))
    write_meta(directory, ["neg", "pos"], "sha", "tok", {"train": {"reviews": 2, "tokens": 6}})
    path = directory / "train" / ("labels.npy" if kind == "pickled objects" else "ids.npy")
    data = path.read_bytes()
    if kind == "random bytes":
        path.write_bytes(os.urandom(len(data)))
    elif kind == "truncated":
        path.write_bytes(data[: len(data) - 8])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "pickled objects":  # loading it with pickles allowed would run a shell command
        np.save(path, np.array([Malicious(marker)], dtype=object), allow_pickle=True)
    elif kind == "bad offsets":
        path = directory / "train" / "offsets.npy"
        np.save(path, np.array([0, 4, 3]))
    return path


@pytest.mark.parametrize("kind", ["random bytes", "truncated", "empty", "pickled objects"])
def test_broken_vectors_are_named_and_never_unpickled(tmp_path, kind):
    marker = tmp_path / "PWNED"
    path = broken_vectors(tmp_path / "vectors", kind, marker)
    with pytest.raises(UserError) as error:
        open_split(tmp_path / "vectors", "train")
    assert str(error.value).startswith(f"{path}: corrupt or not a textrnn vector file (")
    assert str(error.value).endswith("); rerun `dvc repro -f vectorize`")
    assert not marker.exists()


def test_missing_vectors_are_named(tmp_path):
    path = broken_vectors(tmp_path / "vectors", "intact", tmp_path / "PWNED")
    path.unlink()
    with pytest.raises(UserError, match=rf"^{path}: not found; run `dvc repro vectorize`$"):
        open_split(tmp_path / "vectors", "train")


def test_vector_offsets_that_do_not_match_are_named(tmp_path):
    broken_vectors(tmp_path / "vectors", "bad offsets", tmp_path / "PWNED")
    with pytest.raises(UserError, match=rf"^{tmp_path / 'vectors' / 'train'}: offsets do not match ids and labels"):
        open_split(tmp_path / "vectors", "train")


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"\xff\xfe\x00garbage\x80\x81", "not a UTF-8 text file"),
        (b"", "not a textrnn vocabulary"),
        (b"the\nmovie\n", "not a textrnn vocabulary"),
        (b"<unk>\n<pad>\nthe\nthe\n", "not a textrnn vocabulary"),
    ],
)
def test_garbage_vocab_is_named(tmp_path, content, problem):
    path = tmp_path / "vocab.txt"
    path.write_bytes(content)
    with pytest.raises(UserError) as error:
        Vocab.load(path)
    assert str(error.value).startswith(f"{path}: {problem}")
    assert "dvc repro -f build_vocab" in str(error.value)


@pytest.mark.slow
def test_vectorize_names_a_garbage_vocab_and_keeps_the_old_vectors(project):
    (project / "data/vocab.txt").write_bytes(os.urandom(300) + b"\xff")
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, "vectorize"))
    assert line == "error: data/vocab.txt: not a UTF-8 text file; rebuild it with `dvc repro -f build_vocab`"


@pytest.mark.slow
@pytest.mark.parametrize("change", ["smaller", "same size, other tokens"])
def test_train_names_vectors_made_with_another_vocab(project, change):
    vocab = Vocab.load(project / "data/vocab.txt")
    other = Vocab(vocab.itos[:10]) if change == "smaller" else same_size_other_tokens(vocab)
    other.save(project / "data/vocab.txt")
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, "train"))
    assert line == (
        "error: data/vectors was made with another vocabulary than data/vocab.txt; rerun `dvc repro vectorize`"
    )


# ---------------------------------------------------------------- atomic outputs


def test_atomic_path_and_dir_keep_the_old_output_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    folder = tmp_path / "outdir"
    folder.mkdir()
    (folder / "a.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_dir(folder) as tmp:
        (tmp / "a.txt").write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and (folder / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "outdir"]
    with atomic_dir(folder) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "outdir"]


def test_a_write_fault_inside_an_output_folder_names_the_output_not_a_temporary(tmp_path):
    with pytest.raises(UserError) as error, atomic_dir(tmp_path / "plots") as folder, atomic_path(folder / "loss.png"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert str(error.value) == (
        f"cannot write {tmp_path / 'plots' / 'loss.png'}: no space left on the device; free some space and rerun"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_command_runs_with_the_heap_out_of_the_collectors_sight():
    """torch's import leaves hundreds of thousands of objects; collections over them cost ~1 s per stage."""
    seen, made = [], []

    @cli_main
    def command():
        seen.append(gc.get_freeze_count())
        made.extend([] for _ in range(10_000))
        return "done"

    gc.unfreeze()
    try:
        assert command() == "done"
        assert seen[0] > 1000  # what was imported before the command ran is frozen
        assert gc.get_freeze_count() > seen[0] + 9_000  # and, at its end, what it made
    finally:
        gc.unfreeze()


def test_a_signal_inside_interrupts_held_waits_for_the_end_of_the_block(capsys):
    steps = []

    @cli_main
    def job():
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("renamed both")
        steps.append("after the block")

    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exit_:
            job()
    finally:
        gc.unfreeze()  # cli_main froze this test process's heap, as it does a command's
    assert exit_.value.code == 128 + signal.SIGTERM
    assert steps == ["renamed both"]
    assert capsys.readouterr().err.startswith("interrupted by SIGTERM: ")
    assert signal.getsignal(signal.SIGTERM) is previous  # cli_main puts the handlers back


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, code, line",
    [
        (
            signal.SIGINT,
            130,
            "interrupted: stopped before finishing; the previous outputs are intact and no temporary file is left",
        ),
        (
            signal.SIGTERM,
            143,
            "interrupted by SIGTERM: stopped before finishing; the previous outputs are intact and "
            "no temporary file is left",
        ),
        (
            signal.SIGHUP,
            129,
            "interrupted by SIGHUP: stopped before finishing; the previous outputs are intact and "
            "no temporary file is left",
        ),
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_a_signal_during_training_keeps_the_previous_checkpoint_and_curves(project, signum, code, line):
    set_param(project, "train", "epochs", 100000)  # far more than the test waits for
    before = snapshot(project)
    assert "models/model.pt" in before and any(k.startswith("plots/training/") for k in before)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    process = subprocess.Popen(
        [sys.executable, "stages/train.py"],
        cwd=project,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen = []
    for text in process.stderr:  # wait until training is under way: one epoch has been logged
        seen.append(text.rstrip("\n"))
        if text.startswith("epoch 1/"):
            break
    assert seen and seen[-1].startswith("epoch 1/100000"), seen
    assert list((project / "plots").glob(".training.*.tmp")), "the new curves are being written beside the old"
    process.send_signal(signum)
    _, rest = process.communicate(timeout=60)
    lines = seen + rest.splitlines()
    assert process.returncode == code, lines
    assert "Traceback" not in rest
    assert lines[-1] == line
    assert [x for x in lines if x.startswith(("interrupted", "error"))] == [line]
    assert snapshot(project) == before
    assert leftovers(project) == []


# ---------------------------------------------------------------- a full disk

# Run inside a private mount namespace (`unshare -rm`): mounts a small tmpfs, copies the project onto it,
# leaves room for only half of the stage's new output, runs the stage there and reports what it saw.
FULL_DISK_RUN = r"""
import hashlib, json, os, shutil, subprocess, sys
from pathlib import Path

project, disk, stage, room, report = sys.argv[1:6]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", disk], check=True)
copy = Path(shutil.copytree(project, Path(disk) / "project", ignore=shutil.ignore_patterns("__pycache__")))


def outputs():
    return {str(p.relative_to(copy)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for top in OUTPUTS for p in sorted((copy / top).rglob("*")) if p.is_file()}


before = outputs()
size = shutil.disk_usage(disk).used + int(room)
subprocess.run(["mount", "-o", f"remount,size={size}", disk], check=True)
result = subprocess.run([sys.executable, f"stages/{stage}.py"], cwd=copy, capture_output=True, text=True,
                        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
leftovers = sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.name.endswith((".tmp", ".old")))
Path(report).write_text(json.dumps({"returncode": result.returncode, "stderr": result.stderr, "stdout": result.stdout,
                                    "changed": outputs() != before, "leftovers": leftovers,
                                    "free": shutil.disk_usage(disk).free}))
""".replace("OUTPUTS", repr(OUTPUTS))


def private_mounts_allowed() -> bool:
    try:
        probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    except FileNotFoundError:
        return False
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(
    not private_mounts_allowed(),
    reason="needs `unshare -rm` (user and mount namespaces) to mount a small tmpfs; this system does not permit it",
)
@pytest.mark.parametrize(
    "name, output",
    [("download", "data/raw"), ("vectorize", "data/vectors"), ("train", "models/model.pt plots/training")],
)
def test_a_full_disk_leaves_the_previous_outputs_and_says_so_in_one_line(project, tmp_path, name, output):
    new_output = sum(
        p.stat().st_size for top in output.split() for p in [project / top, *(project / top).rglob("*")] if p.is_file()
    )
    (tmp_path / "disk").mkdir()
    report = tmp_path / "report.json"
    run(
        [
            "unshare",
            "-rm",
            sys.executable,
            "-c",
            FULL_DISK_RUN,
            str(project),
            str(tmp_path / "disk"),
            name,
            str(new_output // 2),
            str(report),
        ],
        tmp_path,
    )
    seen = json.loads(report.read_text())
    assert seen["free"] < new_output  # the stage could not have written its output there
    result = subprocess.CompletedProcess([], seen["returncode"], seen["stdout"], seen["stderr"])
    line = error_line(result)
    # The output is named (a file inside an output folder by its final path), never a temporary name.
    assert re.fullmatch(
        rf"error: cannot write ({'|'.join(output.split())})(/[\w.]+)*: no space left on the device; "
        rf"free some space and rerun",
        line,
    ), line
    assert not seen["changed"]
    assert seen["leftovers"] == []


# ---------------------------------------------------------------- safe loading


def same_size_other_tokens(vocab: Vocab) -> Vocab:
    """The same number of tokens, ids read as other tokens: the first two real tokens swapped."""
    tokens = list(vocab.itos)
    tokens[2], tokens[3] = tokens[3], tokens[2]
    return Vocab(tokens)


@pytest.mark.slow
@pytest.mark.parametrize("change", ["larger", "same size, other tokens"])
def test_evaluate_refuses_a_checkpoint_trained_on_another_vocab(project, change):
    """The vocabulary is rebuilt and the vectors made again with it, but the model is not retrained."""
    vocab = Vocab.load(project / "data/vocab.txt")
    other = Vocab(vocab.itos + ["extra1", "extra2"]) if change == "larger" else same_size_other_tokens(vocab)
    other.save(project / "data/vocab.txt")
    stage(project, "vectorize", check=True)
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, "evaluate"))
    assert line == (
        "error: models/model.pt was trained on another vocabulary than the one data/vectors was made "
        "with; retrain with `dvc repro train`"
    )


@pytest.mark.slow
def test_evaluate_refuses_a_checkpoint_with_other_classes(project):
    payload = torch.load(project / "models/model.pt", weights_only=True)
    payload["label_names"] = ["bad", "good"]
    torch.save(payload, project / "models/model.pt")
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, "evaluate"))
    assert line == (
        "error: models/model.pt predicts classes ['bad', 'good'] but data/vectors has "
        "['neg', 'pos']; retrain with `dvc repro train`"
    )


@pytest.fixture
def saved_checkpoint(tmp_path: Path) -> Path:
    """A checkpoint of a small model, as save_checkpoint writes it."""
    torch.manual_seed(0)
    model = RNN(ModelConfig(20, 4, 8))
    path = tmp_path / "saved" / "model.pt"
    save_checkpoint(path, model, model.state_dict(), ["neg", "pos"], {"best_epoch": 1}, INPUTS)
    return path


@pytest.mark.parametrize("content", ["random bytes", "empty", "truncated zip", "not a dict", "wrong shapes"])
def test_load_checkpoint_names_a_corrupt_file(saved_checkpoint, tmp_path, content):
    path = tmp_path / "model.pt"
    original = saved_checkpoint.read_bytes()
    if content == "random bytes":
        path.write_bytes(os.urandom(len(original)))
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "truncated zip":
        path.write_bytes(original[: len(original) - 100])
    elif content == "not a dict":
        torch.save([1, 2, 3], path)
    else:
        payload = torch.load(saved_checkpoint, weights_only=True)
        payload["state_dict"]["embedding.weight"] = torch.zeros(3, 3)
        torch.save(payload, path)
    with pytest.raises(UserError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    expected = {"not a dict": "not a textrnn checkpoint", "wrong shapes": "its weights do not match its config"}
    assert expected.get(content, "corrupt or truncated checkpoint") in message


def test_load_checkpoint_refuses_a_huge_config_over_small_tensors(saved_checkpoint, tmp_path):
    payload = torch.load(saved_checkpoint, weights_only=True)
    payload["config"]["vocabulary_size"] = 10**12  # 32 TB of embeddings, were the model built
    torch.save(payload, tmp_path / "huge.pt")
    with pytest.raises(UserError) as error:
        load_checkpoint(tmp_path / "huge.pt")
    assert str(error.value) == (
        f"{tmp_path / 'huge.pt'}: its weights do not match its config {ModelConfig(**payload['config'])} "
        f"(first: embedding.weight); retrain with `dvc repro -f train`"
    )


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["predict", "evaluate"])
def test_a_checkpoint_claiming_a_huge_model_is_refused_before_anything_is_allocated(project, reader):
    """Small tensors under a config of 10**12 tokens: building that model would take 32 TB."""
    payload = torch.load(project / "models/model.pt", weights_only=True)
    payload["config"]["vocabulary_size"] = 10**12
    torch.save(payload, project / "models/model.pt")
    before = snapshot(project)
    if reader == "predict":
        result = in_bounded_memory(project, "-m", "textrnn", "predict", "a great film")
    else:
        result = in_bounded_memory(project, "stages/evaluate.py")
    line = assert_failed_cleanly(project, before, result)
    assert result.stdout == ""
    assert line == (
        f"error: models/model.pt: its weights do not match its config {ModelConfig(**payload['config'])} "
        f"(first: embedding.weight); retrain with `dvc repro -f train`"
    )


class Malicious:
    """Unpickling this runs a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious_checkpoint(source: Path, path: Path, marker: Path) -> None:
    """``source`` with a Python object in its metadata whose unpickling would run a command."""
    payload = torch.load(source, weights_only=True)
    payload["metadata"]["note"] = Malicious(marker)
    torch.save(payload, path)


def test_a_malicious_pickle_is_refused_and_never_run(saved_checkpoint, tmp_path):
    path, marker = tmp_path / "model.pt", tmp_path / "PWNED"
    malicious_checkpoint(saved_checkpoint, path, marker)
    with pytest.raises(UserError) as error:
        load_checkpoint(path)
    assert str(error.value).startswith(f"{path}: ")
    assert not marker.exists()


@pytest.mark.slow
def test_evaluate_refuses_a_malicious_checkpoint_in_one_line(project, tmp_path):
    marker = tmp_path / "PWNED"
    malicious_checkpoint(project / "models/model.pt", project / "models/model.pt", marker)
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, "evaluate"))
    assert line.startswith("error: models/model.pt: ")
    assert not marker.exists()


def test_the_refusal_says_why_and_never_advises_unsafe_loading(saved_checkpoint, tmp_path):
    path = tmp_path / "model.pt"
    malicious_checkpoint(saved_checkpoint, path, tmp_path / "PWNED")
    with pytest.raises(UserError) as error:
        load_checkpoint(path)
    assert "refused" in str(error.value)
    assert "False" not in str(error.value)


# ---------------------------------------------------------------- numerical faults


@pytest.mark.slow
def test_a_huge_lr_stops_training_with_epoch_batch_and_lever_and_keeps_the_checkpoint(project):
    params = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(params.replace("lr: 0.01", "lr: 1e38"))  # YAML 1.2: a number
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, "train"))
    assert line == "error: training loss is nan at epoch 1, batch 2; lower train.lr or set train.clip_grad_norm"


def tiny_split(n: int = 24) -> EncodedSplit:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 9, size=n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return EncodedSplit(
        rng.integers(2, 20, size=offsets[-1]).astype(np.int32),
        offsets,
        np.arange(n, dtype=np.int64) % 2,
        ["neg", "pos"],
    )


@pytest.mark.slow
@pytest.mark.parametrize("std", [1e34, 3e38], ids=["finite", "overflows-to-inf"])
def test_initial_weights_so_large_that_every_step_is_skipped_name_the_levers(project, std):
    set_param(project, "train", "embedding_init_std", std)
    batches = math.ceil(read_meta(project / "data/vectors")["splits"]["train"]["reviews"] / 16)  # batch_size 16
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, stage(project, "train"))
    assert line == (
        f"error: every training step of epoch 1 had non-finite gradients ({batches} of {batches} "
        f"skipped), so the model never changed: the initial weights or the learning rate are too "
        f"large; lower train.embedding_init_std (now the embeddings start at that scale) or train.lr, "
        f"or set train.clip_grad_norm"
    )


@pytest.mark.slow
def test_sizes_that_cannot_be_allocated_are_refused_before_allocating(project):
    set_param(project, "train", "embedding_size", 2**24)  # the largest params.yaml allows
    params = params_of(project)["train"]
    vocab = Vocab.load(project / "data/vocab.txt")
    config = ModelConfig(len(vocab), 2**24, params["hidden_size"])
    longest = max(int(open_split(project / "data/vectors", name).lengths.max()) for name in ("train", "valid"))
    need = memory.training_bytes(config, params["optimizer"], params["batch_size"], params["valid_batch_size"], longest)
    before = snapshot(project)
    line = assert_failed_cleanly(project, before, in_bounded_memory(project, "stages/train.py"))
    assert re.fullmatch(
        rf"error: training needs about {need / memory.GIB:.1f} GiB \({memory.parameter_count(config):,} weights "
        rf"with their gradients and optimizer state, and batches of up to {longest} tokens\) but [0-9.]+ GiB are "
        rf"free on cpu; lower train.embedding_size / train.hidden_size / train.batch_size / "
        rf"train.valid_batch_size, or set train.max_tokens",
        line,
    ), line


def test_nan_weights_stop_training_at_the_first_batch_and_are_never_saved(tmp_path):
    torch.manual_seed(0)
    model = RNN(ModelConfig(20, 4, 8))
    with torch.no_grad():
        model.V.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLoss) as error:
        train_model(model, tiny_split(), tiny_split(8), TrainConfig(0.01, 8, 2, 0), torch.device("cpu"))
    assert str(error.value) == ("training loss is nan at epoch 1, batch 1; lower train.lr or set train.clip_grad_norm")
    assert isinstance(error.value, UserError)
    path = tmp_path / "model.pt"
    with pytest.raises(RuntimeError, match="non-finite weights in V.weight"):
        save_checkpoint(path, model, model.state_dict(), ["neg", "pos"], {}, INPUTS)
    assert list(tmp_path.iterdir()) == []


def test_every_test_that_docs_faults_md_names_exists():
    """The last column of each row of docs/faults.md names the tests that check it."""
    defined = {
        name
        for path in Path(__file__).parent.glob("test_*.py")
        for name in re.findall(r"^def (test_\w+)", path.read_text(), re.M)
    }
    named = [
        name
        for line in (ROOT / "docs/faults.md").read_text().splitlines()
        if line.startswith("| ")
        for name in re.findall(r"`(?:tests/\w+\.py::)?(test_\w+(?:\.\.\.)?)", line.rsplit(" | ", 1)[-1])
    ]
    assert len(named) > 50
    missing = [
        name
        for name in named
        if not (any(d.startswith(name[:-3]) for d in defined) if name.endswith("...") else name in defined)
    ]
    assert missing == []


# ---------------------------------------------------------------- the file system: permissions, folders, links, limits
#
# The tests run as root, whom chmod does not stop: a permission fault is simulated by making the call that
# meets it (mkstemp, os.replace, open, np.load, ...) raise the PermissionError the kernel would give.

DENIED = "permission denied"


def _deny(monkeypatch, module, name: str, errno_: int = errno.EACCES, when=lambda *args, **kwargs: True):
    """Make ``module.name`` fail as the kernel would for a user who lacks the permission."""
    real = getattr(module, name)

    def denied(*args, **kwargs):
        if when(*args, **kwargs):
            raise OSError(errno_, os.strerror(errno_), str(args[0]) if args else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, denied)


def _write_folder(path: Path) -> None:
    with atomic_dir(path) as tmp:
        (tmp / "curve.png").write_text("new")


READ_ONLY_MODELS_RUN = r"""
import subprocess, sys
subprocess.run(["mount", "--bind", "models", "models"], check=True)
subprocess.run(["mount", "-o", "remount,bind,ro", "models"], check=True)
result = subprocess.run([sys.executable, "stages/train.py"], capture_output=True, text=True)
sys.stderr.write(result.stderr)
sys.exit(result.returncode)
"""


@pytest.mark.slow
@pytest.mark.skipif(not private_mounts_allowed(), reason="needs unshare -rm for a read-only bind mount")
def test_train_with_a_read_only_models_folder_stops_before_the_first_epoch(project):
    """A real read-only models/ (a read-only bind mount in a private mount namespace): one line, no epoch run."""
    before = snapshot(project)
    result = run(["unshare", "-rm", sys.executable, "-c", READ_ONLY_MODELS_RUN], project, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "error: cannot write models/model.pt: read-only file system; run from a writable checkout"
    ]
    assert snapshot(project) == before and leftovers(project) == []


@pytest.mark.parametrize("call", ["mkstemp", "mkdtemp", "replace"])
@pytest.mark.parametrize("errno_", [errno.EACCES, errno.EPERM], ids=["EACCES", "EPERM"])
def test_a_permission_fault_on_any_write_is_one_line_naming_the_folder(tmp_path, monkeypatch, call, errno_):
    """A read-only models/ (or project): every writer says which folder to make writable; nothing is left."""
    import tempfile

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pt").write_text("old")
    module = os if call == "replace" else tempfile
    _deny(monkeypatch, module, call, errno_)
    folder = tmp_path / "models"
    advice = f"{DENIED} in {folder}/; make that folder writable (chmod/chown) or run from a checkout you own"
    writers = {
        "file": (folder / "model.pt", lambda: write_json(folder / "model.pt", 1)),
        "folder": (folder / "plots", lambda: _write_folder(folder / "plots")),
    }
    for name, (path, write) in writers.items():
        if (call, name) in (("mkstemp", "folder"), ("mkdtemp", "file")):
            continue  # each writer meets only its own call
        with pytest.raises(UserError) as error:
            write()
        assert str(error.value) == f"cannot write {path}: {advice}"
    assert sorted(p.name for p in folder.iterdir()) == ["model.pt"]
    assert (folder / "model.pt").read_text() == "old"


def test_a_read_only_file_system_and_a_read_only_project_are_one_line(tmp_path, monkeypatch):
    import tempfile

    _deny(monkeypatch, tempfile, "mkstemp", errno.EROFS)
    with pytest.raises(UserError) as error:
        write_json(tmp_path / "metrics" / "metrics.json", {})
    assert str(error.value) == (
        f"cannot write {tmp_path / 'metrics' / 'metrics.json'}: read-only file system; run from a writable checkout"
    )
    # A project whose own folder is read-only (plots/ not made yet): the folder named is the nearest that exists.
    monkeypatch.undo()
    _deny(monkeypatch, os, "mkdir", errno.EACCES)
    with pytest.raises(UserError) as error:
        write_json(tmp_path / "plots" / "metrics.json", {})
    assert str(error.value) == (
        f"cannot write {tmp_path / 'plots' / 'metrics.json'}: {DENIED} in {tmp_path}/; "
        f"make that folder writable (chmod/chown) or run from a checkout you own"
    )


def test_a_folder_where_a_file_belongs_and_a_file_where_a_folder_belongs(tmp_path):
    (tmp_path / "models" / "model.pt").mkdir(parents=True)
    for write in (
        lambda: check_writable(tmp_path / "models" / "model.pt"),
        lambda: write_json(tmp_path / "models" / "model.pt", 1),
    ):
        with pytest.raises(UserError) as error:
            write()
        assert str(error.value) == (
            f"cannot write {tmp_path / 'models' / 'model.pt'}: a folder stands where a file belongs; "
            f"remove or rename that folder"
        )
    (tmp_path / "plots").write_text("a file")
    for write in (
        lambda: check_writable(tmp_path / "plots" / "training", folder=True),
        lambda: _write_folder(tmp_path / "plots" / "training"),
    ):
        with pytest.raises(UserError) as error:
            write()
        assert str(error.value) == (
            f"cannot write {tmp_path / 'plots' / 'training'}: {tmp_path / 'plots'} is a file where a folder belongs; "
            f"remove or rename it"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "plots"]
    assert list((tmp_path / "models" / "model.pt").iterdir()) == []
    # A file where an output folder itself belongs is an old output: replaced, nothing left beside it.
    (tmp_path / "metrics").write_text("a file")
    with atomic_dir(tmp_path / "metrics") as tmp:
        (tmp / "m.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics", "models", "plots"]
    assert [p.name for p in (tmp_path / "metrics").iterdir()] == ["m.json"]


# stage -> its params, the folder made read-only, the output named, its paths (relative to tmp_path), and
# what it says once writable (its first input: none exists here).
EARLY_WRITE_CHECKS = {
    "train": (
        {"threads": 0},
        "models",
        "models/model.pt",
        {
            "vectors_dir": "data/vectors",
            "vocab_path": "data/vocab.txt",
            "model_path": "models/model.pt",
            "plots_dir": "plots/training",
        },
        "vocabulary not found",
    ),
    "evaluate": (
        {"device": "cpu", "batch_size": 64},
        "metrics",
        "metrics/metrics.json",
        {
            "model_path": "models/model.pt",
            "vectors_dir": "data/vectors",
            "metrics_path": "metrics/metrics.json",
            "plot_data_dir": "metrics/plots",
            "png_dir": "plots/evaluation",
        },
        "model.pt",
    ),
}


@pytest.mark.parametrize("stage", list(EARLY_WRITE_CHECKS))
def test_a_stage_checks_that_its_outputs_are_writable_before_its_long_work(tmp_path, monkeypatch, stage):
    """train saves the model after the last epoch, evaluate writes after scoring every split: a read-only
    output folder must stop each before that work. No input exists here: had the stage read one first,
    it would have said so instead."""
    import importlib
    import tempfile

    run_stage = importlib.import_module(f"textrnn.pipeline.{stage}").run
    params, denied, output, relative, first_input = EARLY_WRITE_CHECKS[stage]
    folder = tmp_path / denied
    folder.mkdir()
    paths = {name: tmp_path / path for name, path in relative.items()}
    _deny(monkeypatch, tempfile, "mkstemp", when=lambda *args, dir=None, **kwargs: Path(dir) == folder)
    with pytest.raises(UserError) as error:
        run_stage(params, **paths)
    assert str(error.value) == (
        f"cannot write {tmp_path / output}: {DENIED} in {folder}/; "
        f"make that folder writable (chmod/chown) or run from a checkout you own"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [denied]  # the check created nothing
    monkeypatch.undo()
    with pytest.raises(UserError, match=first_input):  # writable: the stage goes on to its inputs
        run_stage(params, **paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == [denied]


def test_an_unreadable_checkpoint_is_not_called_corrupt(saved_checkpoint, monkeypatch):
    _deny(monkeypatch, torch, "load")
    with pytest.raises(UserError) as error:
        load_checkpoint(saved_checkpoint)
    assert str(error.value) == (
        f"cannot read {saved_checkpoint}: {DENIED}; make it readable (chmod/chown) or run as a user who may read it"
    )


def test_an_unreadable_or_folder_vocabulary_or_input_is_one_line(saved_checkpoint, tmp_path, monkeypatch, capsys):
    from textrnn import cli

    folder = tmp_path / "vocab.txt"
    folder.mkdir()
    with pytest.raises(UserError) as error:
        Vocab.load(folder)
    assert str(error.value) == f"{folder}: is a folder; a vocabulary is a text file, one token per line"
    path = tmp_path / "locked.txt"
    Vocab(["<unk>", "<pad>", "good"]).save(path)
    _deny(monkeypatch, Path, "read_text", when=lambda self, *args, **kwargs: self == path)
    with pytest.raises(UserError) as error:
        Vocab.load(path)
    assert str(error.value) == (
        f"cannot read {path}: {DENIED}; make it readable (chmod/chown) or run as a user who may read it"
    )
    # predict's --file, unreadable.
    from textrnn.scoring import predict

    def open_(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(file))

    monkeypatch.setattr(predict, "open", open_, raising=False)
    with pytest.raises(UserError) as error:
        predict.read_inputs([], str(path))
    assert str(error.value) == (
        f"cannot read {path}: {DENIED}; make it readable (chmod/chown) or run as a user who may read it"
    )
    # Through the command, as `textrnn predict --vocab FOLDER` runs: one line, exit 1.
    with pytest.raises(SystemExit) as exit_:
        cli.main(["predict", "--model", str(saved_checkpoint), "--vocab", str(folder), "a review"])
    gc.unfreeze()
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        f"error: {folder}: is a folder; a vocabulary is a text file, one token per line\n"
    )


def test_unreadable_vectors_and_parquet_files_are_not_called_corrupt(tmp_path, monkeypatch):
    from textrnn.data import files, splits

    writer = SplitVectorsWriter(tmp_path / "vectors" / "train")
    writer.append(np.array([2, 3], np.int32), np.array([2]))
    writer.close(np.array([0]))
    write_meta(tmp_path / "vectors", ["neg", "pos"], "ab" * 32, "f" * 16, {})
    raw = tmp_path / "train.parquet"
    pd.DataFrame({"text": ["a"], "label": [0]}).to_parquet(raw)
    advice = f"{DENIED}; make it readable (chmod/chown) or run as a user who may read it"
    _deny(monkeypatch, np, "load")
    with pytest.raises(UserError) as error:
        open_split(tmp_path / "vectors", "train")
    assert str(error.value) == f"cannot read {tmp_path / 'vectors' / 'train' / 'ids.npy'}: {advice}"
    _deny(monkeypatch, Path, "read_text", when=lambda self, *args, **kwargs: self.name == "meta.json")
    with pytest.raises(UserError) as error:
        read_meta(tmp_path / "vectors")
    assert str(error.value) == f"cannot read {tmp_path / 'vectors' / 'meta.json'}: {advice}"
    # pyarrow raises an OSError carrying the errno (its FileNotFoundError carries 2), here EACCES.
    _deny(monkeypatch, splits.pq, "ParquetFile")
    with pytest.raises(UserError) as error:
        splits.num_rows(raw)
    assert str(error.value) == f"cannot read {raw}: {advice}"
    with pytest.raises(UserError) as error:
        files.open_parquet(raw)  # download's reader
    assert str(error.value) == f"cannot read {raw}: {advice}"
    monkeypatch.undo()
    # A folder where a parquet file belongs: pyarrow's OSError carries no errno, the path says what it is.
    folder = tmp_path / "valid.parquet"
    folder.mkdir()
    in_place = "a folder stands where a file belongs; remove or rename that folder"
    with pytest.raises(UserError) as error:
        splits.num_rows(folder)
    assert str(error.value) == f"cannot read {folder}: {in_place}"
    with pytest.raises(UserError) as error:
        files.open_parquet(folder)  # download's reader
    assert str(error.value) == f"cannot read {folder}: {in_place}"


def test_preset_apply_leaves_a_read_only_params_yaml_alone(tmp_path, monkeypatch):
    from textrnn.project import presets

    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    before = params.read_bytes()
    params.chmod(0o444)  # no write bit for anyone: read-only by intent, even for root
    preset = {"train": {"cell": "gru"}}
    with pytest.raises(UserError) as error:
        presets.apply(preset, params)
    assert str(error.value) == f"{params}: is read-only; make it writable (chmod u+w {params}) to apply a preset"
    assert params.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
    params.chmod(0o644)

    def open_(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(file))

    monkeypatch.setattr(textrnn.core.params, "open", open_, raising=False)  # how params.yaml is read
    with pytest.raises(UserError) as error:
        presets.apply(preset, params)
    assert str(error.value) == (
        f"cannot read {params}: {DENIED}; make it readable (chmod/chown) or run as a user who may read it"
    )
    monkeypatch.undo()
    presets.apply(preset, params)
    assert yaml.safe_load(params.read_text())["train"]["cell"] == "gru"


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_symlinked_output_is_written_in_its_target_and_stays_a_link(tmp_path, kind):
    """data/vectors moved to another disk and linked back: every run writes there, the link stays."""
    other = tmp_path / "other-disk" / "vectors"
    project = tmp_path / "project" / "data"
    project.mkdir(parents=True)
    link = project / "vectors"
    if kind == "folder":
        other.mkdir(parents=True)
        (other / "old.txt").write_text("old")
    else:
        other.parent.mkdir(parents=True)
        other.write_text("old")
    link.symlink_to(other)
    for run_ in range(3):
        if kind == "folder":
            with atomic_dir(link) as tmp:
                (tmp / "ids.txt").write_text(str(run_))
        else:
            write_json(link, run_)
    assert link.is_symlink() and Path(os.readlink(link)) == other
    assert (link / "ids.txt" if kind == "folder" else link).read_text().strip() == "2"
    assert [p.name for p in project.iterdir()] == ["vectors"]  # no .tmp, no .old beside the link
    assert [p.name for p in other.parent.iterdir()] == ["vectors"]  # nor beside the target
    if kind == "folder":
        assert [p.name for p in other.iterdir()] == ["ids.txt"]
    check_writable(link, folder=kind == "folder")


def test_a_link_into_the_dvc_cache_is_replaced_never_written_through(tmp_path):
    """DVC's `cache.type: symlink` links outputs to its cache: writing through would change the cache."""
    cached = tmp_path / ".dvc" / "cache" / "files" / "md5" / "ab" / "cdef"
    cached.parent.mkdir(parents=True)
    cached.write_text("cached")
    link = tmp_path / "metrics.json"
    link.symlink_to(cached)
    write_json(link, 1)
    assert cached.read_text() == "cached"
    assert not link.is_symlink() and link.read_text() == "1\n"


def test_sighup_is_handled_like_sigterm(tmp_path, capsys):
    """The terminal closes (SIGHUP): exit 129, one line, no temporary left, the old output intact."""
    out = tmp_path / "plots"
    out.mkdir()
    (out / "old.png").write_text("old")

    @cli_main
    def job():
        with atomic_dir(out) as tmp:
            (tmp / "new.png").write_text("half")
            os.kill(os.getpid(), signal.SIGHUP)
            raise AssertionError("not reached: the signal unwinds")

    previous = signal.getsignal(signal.SIGHUP)
    try:
        with pytest.raises(SystemExit) as exit_:
            job()
    finally:
        gc.unfreeze()
    assert exit_.value.code == 129
    assert capsys.readouterr().err == (
        "interrupted by SIGHUP: stopped before finishing; the previous outputs are intact "
        "and no temporary file is left\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["plots"] and [p.name for p in out.iterdir()] == ["old.png"]
    assert signal.getsignal(signal.SIGHUP) is previous


def test_a_sighup_ignored_by_nohup_stays_ignored():
    seen = []

    @cli_main
    def job():
        seen.append(signal.getsignal(signal.SIGHUP))

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        job()
    finally:
        signal.signal(signal.SIGHUP, previous)
        gc.unfreeze()
    assert seen == [signal.SIG_IGN]


def test_too_many_open_files_names_the_limit(tmp_path):
    """`ulimit -n 32`: a real limit, so a subprocess; the writer's fault names the output and the limit."""
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (32, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "from textrnn.core.filesystem import atomic_dir\n"
        "from textrnn.core.runtime import cli_main\n"
        "@cli_main\n"
        "def main():\n"
        "    with atomic_dir(Path('out')) as tmp:\n"
        "        handles = [open(tmp / f'{i}.txt', 'w') for i in range(64)]\n"
        "main()\n"
    )
    result = run([sys.executable, "-c", script], tmp_path, check=False, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 1
    assert result.stderr == (
        "error: cannot write out: too many open files (this process may open 32: `ulimit -n`); "
        "raise the limit, e.g. `ulimit -n 4096`, and rerun\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["stages/evaluate.py"],
            "error: the evaluate stage ran out of memory (MemoryError: drawing the figure); lower "
            "evaluate.batch_size, free memory (close other programs), or use a machine with more memory",
        ),
        (
            ["stages/split.py"],
            "error: the split stage ran out of memory (MemoryError: drawing the figure); free memory "
            "(close other programs), or use a machine with more memory",
        ),
        (
            ["/x/textrnn/__main__.py", "predict", "--file", "-"],
            "error: `textrnn predict` ran out of memory (MemoryError: drawing the figure); lower --batch-size, "
            "free memory (close other programs), or use a machine with more memory",
        ),
    ],
    ids=["evaluate", "split", "predict"],
)
def test_out_of_memory_names_the_command_and_its_own_levers(monkeypatch, capsys, argv, line):
    """A MemoryError can come from anywhere (a figure, a table): name what ran, never a traceback."""

    @cli_main
    def job():
        raise MemoryError("drawing the figure")

    monkeypatch.setattr(sys, "argv", argv)
    try:
        with pytest.raises(SystemExit) as exit_:
            job()
    finally:
        gc.unfreeze()
    assert exit_.value.code == 1
    assert capsys.readouterr().err == line + "\n"


def test_a_permission_fault_nobody_named_still_ends_in_one_line(capsys):
    """cli_main's last resort, for a read or write no module wraps."""

    @cli_main
    def job():
        raise PermissionError(errno.EACCES, "Permission denied", "data/somewhere")

    try:
        with pytest.raises(SystemExit) as exit_:
            job()
    finally:
        gc.unfreeze()
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        "error: cannot use data/somewhere: permission denied; make it readable (writable, for an output) "
        "(chmod/chown) or run as a user who may use it\n"
    )
