"""Data on disk: a local folder read fresh, standardized split files, the stratified split, .npy vectors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, synthetic_reviews, write_hf_parquet
from sklearn.model_selection import train_test_split

from textrnn.core.errors import UserError
from textrnn.data import arrow, raw, splits
from textrnn.data.raw import write_raw
from textrnn.data.sources import hub_source, local_source
from textrnn.data.vectors import SplitVectorsWriter, open_split, write_meta

# ---------------------------------------------------------------- a local folder


# Which files make each split, and the formats: tests/test_sources.py.


def read_raw(directory, name):
    return pd.read_parquet(directory / f"{name}.parquet")


def test_a_replaced_file_is_read_fresh_even_with_its_old_mtime(tmp_path):
    """No cache keyed on path or modification time may serve old rows."""
    dataset = tmp_path / "dataset"
    write_hf_parquet(dataset / "train.parquet", synthetic_reviews(40, seed=0), ["neg", "pos"])
    stamp = os.stat(dataset / "train.parquet")
    write_raw(local_source(dataset, "label"), "text", "label", tmp_path / "first")
    write_hf_parquet(dataset / "train.parquet", synthetic_reviews(40, seed=1), ["neg", "pos"])
    os.utime(dataset / "train.parquet", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    write_raw(local_source(dataset, "label"), "text", "label", tmp_path / "second")
    assert read_raw(tmp_path / "second", "train")["text"].tolist() == synthetic_reviews(40, seed=1)["text"].tolist()
    assert not read_raw(tmp_path / "first", "train").equals(read_raw(tmp_path / "second", "train"))


def test_raw_splits_keep_rows_and_order_map_labels_and_drop_blank_texts(tmp_path, caplog):
    dataset = tmp_path / "dataset"
    frame = pd.DataFrame(
        {
            "review": ["good film", "  ", None, "bad\tfilm", "\u2003", "fine"],
            "sentiment": ["pos", "neg", "pos", "neg", "pos", "meh"],
        }
    )
    dataset.mkdir()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), dataset / "train.parquet")
    rows = write_raw(local_source(dataset, "sentiment"), "review", "sentiment", tmp_path / "raw")
    assert rows == {"train": 3}
    raw = read_raw(tmp_path / "raw", "train")
    assert raw["text"].tolist() == ["good film", "bad\tfilm", "fine"]
    assert raw["label"].tolist() == [2, 1, 0]  # classes: the sorted distinct values of every row, blank ones too
    assert json.loads((tmp_path / "raw" / "labels.json").read_text()) == {"names": ["meh", "neg", "pos"]}
    assert "dropped 3 rows with a null, empty or whitespace-only text" in caplog.text


def test_blank_texts_are_those_python_strips_to_nothing():
    whitespace = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    texts = [None, "", "x", " x ", "\u00e9", "\u200b", "\x00", "\x7f", "\u2003\u2003", "".join(whitespace)]
    texts += whitespace + [w + "\u00e9" for w in whitespace] + ["".join(whitespace) + "!"]
    array = pa.array(texts, pa.string())
    for part in (array, array.slice(3)):
        assert raw._blank(part).tolist() == [t is None or not t.strip() for t in part.to_pylist()]


def test_boolean_arrays_come_out_of_their_bits_as_pyarrow_converts_them():
    array = pa.array(np.random.default_rng(0).random(1000) < 0.3)
    for part in (array, array.slice(3, 500), array.slice(997), array.slice(5, 0)):
        assert arrow.to_numpy(part).dtype == bool
        assert np.array_equal(arrow.to_numpy(part), part.to_numpy(zero_copy_only=False))


def test_reading_a_file_in_batches_holds_a_few_row_groups_not_the_file(tmp_path):
    """pyarrow's pre-buffering kept every row group read so far until the end: memory grew with the file."""
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("abcdefghij klmnopqrstuvwxyz"), 2000)) for _ in range(4000)]  # 8 MB
    path = tmp_path / "train.parquet"
    with splits.SplitWriter(path) as out:
        for start in range(0, len(texts), 100):  # a row group per 100 rows (200 kB)
            out.write(pa.array(texts[start : start + 100]), pa.array([0, 1] * 50, pa.int64()))
    base = pa.total_allocated_bytes()
    readers = {
        "split file": lambda: splits.iter_batches(path, ["text", "label"], batch_rows=100),
        "dataset folder": lambda: local_source(tmp_path, "label").splits["train"].batches(["text", "label"], 100),
    }
    for name, batches in readers.items():
        held = [pa.total_allocated_bytes() - base for _ in batches()]
        assert len(held) == 40 and max(held) < 2_000_000, (name, max(held))


def test_a_hub_dataset_is_standardized_as_the_same_local_folder_is(tmp_path, monkeypatch):
    """The Hub path (no network here: `datasets` loads a local folder in its place), splits written side by side."""
    import datasets

    folder = tmp_path / "dataset"
    reviews = synthetic_reviews(3000, seed=1)
    reviews.loc[[5, 2500], "text"] = [" ", ""]  # dropped either way
    write_hf_parquet(folder / "train.parquet", reviews, ["neg", "pos"])
    write_hf_parquet(folder / "test.parquet", synthetic_reviews(2500, seed=2), ["neg", "pos"])
    load = datasets.load_dataset
    asked = []

    def load_dataset(dataset_id, revision=None):
        asked.append((dataset_id, revision))
        return load(str(folder), cache_dir=str(tmp_path / "hf-cache"))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    source = hub_source("someone/reviews", "abc123", "label")
    assert source.description == "someone/reviews@abc123" and asked == [("someone/reviews", "abc123")]
    hub_rows = write_raw(source, "text", "label", tmp_path / "hub")
    local_rows = write_raw(local_source(folder, "label"), "text", "label", tmp_path / "local")
    assert hub_rows == local_rows == {"test": 2500, "train": 2998}
    for name in ("train", "test"):
        assert read_raw(tmp_path / "hub", name).equals(read_raw(tmp_path / "local", name)), name
    assert (tmp_path / "hub" / "labels.json").read_text() == (tmp_path / "local" / "labels.json").read_text()


def test_class_label_names_come_from_the_parquet_metadata(tmp_path):
    dataset = tmp_path / "dataset"
    write_hf_parquet(dataset / "train.parquet", synthetic_reviews(30, n_classes=3), ["a", "b", "c"])
    write_raw(local_source(dataset, "label"), "text", "label", tmp_path / "raw")
    assert json.loads((tmp_path / "raw" / "labels.json").read_text()) == {"names": ["a", "b", "c"]}


@pytest.mark.parametrize(
    "case, message",
    [
        ("same column", "download.text_column and download.label_column are both 'text'"),
        ("all blank test", "split 'test': no row has a text (4 blank of 4)"),
        ("label outside", "train.parquet: label 5 is outside the classes ['neg', 'pos'] (0..1) in 1 of its 20 rows"),
        # every file's labels are checked before any is written, train's first
        ("labels outside in train and test", "train.parquet: label 5 is outside"),
        ("missing column", "no column 'label'"),
    ],
)
def test_raw_faults_are_one_line(tmp_path, case, message):
    dataset = tmp_path / "dataset"
    train = synthetic_reviews(20)
    test = pd.DataFrame({"text": [" ", "", "\n", "\t"], "label": [0, 1, 0, 1]})
    if case.startswith("label"):
        train.loc[3, "label"] = 5
    if case == "labels outside in train and test":
        test = synthetic_reviews(20, seed=3).assign(label=7)
    if case == "missing column":
        train = train.rename(columns={"label": "stars"})
    write_hf_parquet(dataset / "train.parquet", train, None if case == "missing column" else ["neg", "pos"])
    if case in ("all blank test", "labels outside in train and test"):
        write_hf_parquet(dataset / "test.parquet", test, ["neg", "pos"])
    label_column = "text" if case == "same column" else "label"
    with pytest.raises(UserError, match=re.escape(message)):
        write_raw(local_source(dataset, label_column), "text", label_column, tmp_path / "raw")


# ---------------------------------------------------------------- the stratified split


@pytest.mark.parametrize(
    "counts, size, seed",
    [
        ([300, 100], 0.2, 42),
        ([120, 80, 50], 0.3, 7),
        ([7, 7, 9, 2], 0.25, 0),
        ([12500, 12500], 0.2, 42),
        ([51, 49], 0.5, 3),
        ([86, 1162, 1250], 0.2, 1),
    ],
)
def test_stratified_indices_are_sklearns_train_test_split(counts, size, seed):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.concatenate([np.full(n, label) for label, n in enumerate(counts)])).astype(np.int64)
    rows = np.arange(len(labels))
    expected_rest, expected_part = train_test_split(rows, test_size=size, random_state=seed, stratify=labels)
    rest, part = splits.stratified_indices(labels, size, seed, "valid", "data")
    assert rest.tolist() == expected_rest.tolist() and part.tolist() == expected_part.tolist()


def test_a_class_with_one_row_cannot_be_stratified():
    with pytest.raises(UserError, match="class 1 has 1 row; a stratified valid split needs at least 2 per class"):
        splits.stratified_indices(np.array([0] * 50 + [1]), 0.2, 0, "valid", "tiny")


def test_reordering_in_parts_or_in_memory_writes_the_rows_in_the_asked_order(tmp_path):
    source = tmp_path / "train.parquet"
    frame = synthetic_reviews(1000, seed=3)
    with splits.SplitWriter(source) as out:
        out.write(pa.array(frame["text"]), pa.array(frame["label"]))
    rest, part = splits.stratified_indices(frame["label"].to_numpy(), 0.3, 5, "valid", "x")
    written = {}
    # parts of 64 rows; parts of 700 (one per output: 700 and 300 rows); all 1,000 rows in memory
    for reorder_rows in (64, 700, 1000):
        folder = tmp_path / str(reorder_rows)
        folder.mkdir()
        splits.write_reordered(source, {folder / "a.parquet": rest, folder / "b.parquet": part}, reorder_rows)
        for name, index in (("a", rest), ("b", part)):
            read = pd.read_parquet(folder / f"{name}.parquet")
            assert read["text"].tolist() == frame["text"].iloc[index].tolist()
            assert read["label"].tolist() == frame["label"].iloc[index].tolist()
        assert not [p for p in folder.iterdir() if p.name.startswith(".reorder")]
        written[reorder_rows] = [(folder / name).read_bytes() for name in ("a.parquet", "b.parquet")]
    assert written[700] == written[1000]  # the same row groups, so the same bytes


# ---------------------------------------------------------------- vectors


def write_vectors(directory, reviews, labels, label_names=("neg", "pos"), chunk=2):
    writer = SplitVectorsWriter(directory / "train")
    for start in range(0, len(reviews), chunk):
        part = reviews[start : start + chunk]
        writer.append(np.array([t for r in part for t in r], dtype=np.int32), np.array([len(r) for r in part]))
    writer.close(np.array(labels))
    write_meta(
        directory, list(label_names), "sha", "tok", {"train": {"reviews": len(reviews), "tokens": writer.tokens}}
    )


def test_vectors_written_in_chunks_read_back_memory_mapped(tmp_path):
    reviews = [[5, 6, 7], [8], [9, 10, 11, 12, 13], [], [14, 15]]
    write_vectors(tmp_path, reviews, [0, 1, 1, 0, 1])
    split = open_split(tmp_path, "train", vocab_size=16)
    assert isinstance(split.ids, np.memmap) and split.ids.dtype == np.int32
    assert [split.sequence(i).tolist() for i in range(len(split))] == reviews
    assert split.offsets.tolist() == [0, 3, 4, 9, 9, 11] and split.labels.tolist() == [0, 1, 1, 0, 1]
    assert split.label_names == ["neg", "pos"]
    assert np.load(tmp_path / "train" / "ids.npy", allow_pickle=False).tolist() == list(range(5, 16))


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate ids", "ids.npy: corrupt or not a textrnn vector file"),
        ("offsets", "offsets do not match ids and labels"),
        ("vocab", r"token ids exceed the vocabulary \(10 tokens\)"),
        ("pickle", "labels.npy: corrupt or not a textrnn vector file"),
        ("meta", "meta.json: not a textrnn vectors file"),
    ],
)
def test_damaged_vectors_are_named(tmp_path, damage, message):
    write_vectors(tmp_path, [[5, 6, 7], [8], [9, 12]], [0, 1, 1])
    folder = tmp_path / "train"
    if damage == "truncate ids":
        (folder / "ids.npy").write_bytes((folder / "ids.npy").read_bytes()[:140])
    elif damage == "offsets":
        np.save(folder / "offsets.npy", np.array([0, 3, 2, 6]))
    elif damage == "pickle":
        np.save(folder / "labels.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif damage == "meta":
        (tmp_path / "meta.json").write_text("[]")
    with pytest.raises(UserError, match=message):
        open_split(tmp_path, "train", vocab_size=10)


STAGE_IMPORTS = """
import json, sys
from pathlib import Path
from textrnn.core.params import load_params
from textrnn.pipeline import build_vocab, download, split, vectorize
params = {s: load_params(s, Path(sys.argv[1])) for s in ("download", "split", "vocab", "vectorize")}
work = Path(sys.argv[3])
download.run(dict(params["download"], dataset=sys.argv[2]), work / "raw")
split.run(params["split"], work / "raw", work / "split")
build_vocab.run(params["vocab"], work / "split", work / "vocab.txt")
vectorize.run(params["vectorize"], work / "split", work / "vocab.txt", work / "vectors")
print(json.dumps(sorted(m for m in ("torch", "pandas", "sklearn", "datasets") if m in sys.modules)))
"""


def test_the_preprocessing_stages_load_neither_torch_nor_pandas(tmp_path, dataset_dir):
    """Each would add seconds to every stage's start (torch ~2 s, pandas ~0.4 s) for nothing it needs."""
    result = subprocess.run(
        [sys.executable, "-c", STAGE_IMPORTS, str(ROOT / "params.yaml"), str(dataset_dir), str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == []
    assert (tmp_path / "out" / "vectors" / "meta.json").is_file()


@pytest.mark.parametrize(
    "content",
    ['{"names": 5}', '{"names": null}', '{"names": "ab"}', '{"names": [["a"], "b"]}', '{"names": ["a", "a"]}'],
)
def test_a_damaged_labels_file_is_one_line_never_other_classes(tmp_path, content):
    (tmp_path / "labels.json").write_text(content)
    with pytest.raises(UserError) as error:
        splits.read_labels(tmp_path)
    assert str(error.value) == f"{tmp_path / 'labels.json'}: not a textrnn labels file; rerun `dvc repro -f`"
