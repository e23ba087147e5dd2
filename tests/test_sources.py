"""A local dataset folder: which files make each split, its formats (parquet, CSV, JSON lines), read in batches."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import synthetic_reviews

from textrnn.core.errors import UserError
from textrnn.data import files, splits
from textrnn.data.raw import write_raw
from textrnn.data.sources import BATCH_ROWS, SPLIT_WORDS, find_split_files, local_source


def touch(folder, *names):
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    return folder


def found(folder):
    """The split -> files mapping, as paths relative to ``folder``, in its order."""
    mapping = find_split_files(folder)
    return [(split, [path.relative_to(folder).as_posix() for path in paths]) for split, paths in mapping.items()]


# ---------------------------------------------------------------- which files make each split


@pytest.mark.parametrize(
    "names, expected",
    [
        (
            ["train.parquet", "validation.parquet", "test.parquet", "README.md"],
            [("test", ["test.parquet"]), ("train", ["train.parquet"]), ("valid", ["validation.parquet"])],
        ),
        (  # the Hub's layout: shards in data/, beside its metadata and a hidden cache
            [
                "data/train-00000-of-00002.parquet",
                "data/train-00001-of-00002.parquet",
                "data/test-00000-of-00001.parquet",
                "README.md",
                ".gitattributes",
                "dataset_infos.json",
                ".cache/huggingface/download/data/train-00000-of-00002.parquet",
            ],
            [
                ("test", ["data/test-00000-of-00001.parquet"]),
                ("train", ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]),
            ],
        ),
        (  # HF-named shards directly in the folder, JSON lines
            ["train-00000-of-00002.jsonl", "train-00001-of-00002.jsonl", "dev-00000-of-00001.jsonl"],
            [
                ("valid", ["dev-00000-of-00001.jsonl"]),
                ("train", ["train-00000-of-00002.jsonl", "train-00001-of-00002.jsonl"]),
            ],
        ),
        (  # the Hub's parquet conversion: a folder per split
            ["train/0000.parquet", "train/0001.parquet", "test/0000.parquet"],
            [("test", ["test/0000.parquet"]), ("train", ["train/0000.parquet", "train/0001.parquet"])],
        ),
        (["reviews.csv", "more_reviews.tsv"], [("train", ["more_reviews.tsv", "reviews.csv"])]),  # no split named
        (["my_train_set.csv", "test_set.csv"], [("train", ["my_train_set.csv"]), ("test", ["test_set.csv"])]),
    ],
    ids=["flat", "data shards", "hf-named shards", "split folders", "no split named", "words in names"],
)
def test_which_files_make_each_split(tmp_path, names, expected):
    assert found(touch(tmp_path, *names)) == expected


@pytest.mark.parametrize(
    "names, message",
    [
        (
            ["train.parquet", "old/train.parquet", "test.parquet"],
            "download.dataset: old/train.parquet lies in a subfolder that is neither data/ nor named after a split; "
            "data files lie directly in the folder, in data/, or in train/ validation/ test/: move it there or out "
            "of the folder (or point download.dataset at its folder)",
        ),
        (
            ["train.parquet", "dev.parquet", "validation.parquet"],
            "download.dataset: dev.parquet and validation.parquet would both be the valid split; keep one of them "
            "(move the other out of the folder), or name them as shards of one split (train-00000-of-00002, ...)",
        ),
        (
            ["train.parquet", "train_old.parquet"],
            "download.dataset: train.parquet and train_old.parquet would both be the train split; keep one of them "
            "(move the other out of the folder), or name them as shards of one split (train-00000-of-00002, ...)",
        ),
        (
            ["train.csv", "test.parquet"],
            "download.dataset: {folder} mixes data formats: test.parquet (parquet) and train.csv (CSV); keep the "
            "files of one format in the folder and move the others out",
        ),
        (
            [],
            "download.dataset: {folder} holds no data files (found []); give a folder of parquet, CSV or JSON lines "
            "files such as train.parquet and test.parquet (.parquet, .csv, .tsv, .jsonl, .ndjson, .json)",
        ),
        (
            ["README.md", "train.txt"],
            "download.dataset: {folder} holds no data files (found ['README.md', 'train.txt']); give a folder of "
            "parquet, CSV or JSON lines files such as train.parquet and test.parquet (.parquet, .csv, .tsv, .jsonl, "
            ".ndjson, .json)",
        ),
        (
            ["train.parquet", "data/test.parquet"],
            "download.dataset: {folder} holds data files at two levels (data/test.parquet and train.parquet); keep "
            "them all directly in the folder, all in data/, or all in folders named after their split",
        ),
        (
            ["data/train-00000-of-00003.parquet", "data/train-00002-of-00003.parquet"],
            "download.dataset: the train split's shards are incomplete (data/train-00000-of-00003.parquet: 2 of 3 "
            "present, missing index [1]); fetch every shard",
        ),
        (
            ["train.parquet", "extra.parquet"],
            "download.dataset: cannot tell which split extra.parquet belongs to; name each file after its split "
            "({splits})",
        ),
        (
            ["train_test.parquet"],
            "download.dataset: train_test.parquet: its name fits the splits ['train', 'test']; rename it",
        ),
    ],
    ids=[
        "nested",
        "dev and validation",
        "two train names",
        "mixed formats",
        "empty",
        "no data",
        "two levels",
        "missing shard",
        "unnamed",
        "two splits in a name",
    ],
)
def test_an_ambiguous_folder_is_refused_in_one_line(tmp_path, names, message):
    with pytest.raises(UserError) as error:
        find_split_files(touch(tmp_path, *names))
    splits = ", ".join(words[0] for words in SPLIT_WORDS.values())  # train, validation, test, ...
    assert str(error.value).startswith(message.format(folder=tmp_path, splits=splits))
    assert "\n" not in str(error.value)


def test_a_symlinked_data_folder_is_refused_a_linked_dataset_folder_or_file_is_read(tmp_path):
    """DVC hashes download.dataset following a link to the folder itself and linked files, never a
    linked folder inside it: that one would hide every change behind it, so it is refused."""
    target = touch(tmp_path / "elsewhere", "train-00000-of-00001.parquet", "test-00000-of-00001.parquet")
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "data").symlink_to(target)
    with pytest.raises(UserError) as error:
        find_split_files(folder)
    assert str(error.value) == (
        "download.dataset: data is a symbolic link to a folder, which DVC does not look inside (a change there "
        "would not rerun download); point download.dataset at a folder that holds the files (a link to the whole "
        "dataset folder works), or link the files one by one"
    )
    (folder / "data").unlink()
    (folder / "train.parquet").symlink_to(target / "train-00000-of-00001.parquet")
    (folder / ".cache").symlink_to(target)  # hidden: never data
    assert found(folder) == [("train", ["train.parquet"])]
    (tmp_path / "linked").symlink_to(target)
    assert found(tmp_path / "linked") == [
        ("test", ["test-00000-of-00001.parquet"]),
        ("train", ["train-00000-of-00001.parquet"]),
    ]


def test_each_split_is_logged_with_its_files_and_rows(tmp_path, caplog):
    frame = synthetic_reviews(30)
    (tmp_path / "data").mkdir()
    frame[:20].to_parquet(tmp_path / "data" / "train-00000-of-00002.parquet", index=False)
    frame[20:].to_parquet(tmp_path / "data" / "train-00001-of-00002.parquet", index=False)
    frame[:7].to_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", index=False)
    with caplog.at_level(logging.INFO, logger="textrnn"):
        source = local_source(tmp_path, "label")
    assert {name: split.num_rows for name, split in source.splits.items()} == {"test": 7, "train": 30}
    assert [r.getMessage() for r in caplog.records] == [
        "download: test <- data/test-00000-of-00001.parquet (7 rows)",
        "download: train <- data/train-00000-of-00002.parquet (20 rows), data/train-00001-of-00002.parquet "
        "(10 rows): 30 rows in 2 files",
    ]


# ---------------------------------------------------------------- formats


def tricky_reviews(n: int, seed: int) -> pd.DataFrame:
    """Reviews with commas, quotes, tabs, newlines and a blank one; string labels in three classes."""
    frame = synthetic_reviews(min(n, 300), seed, n_classes=3)
    frame = frame.iloc[np.arange(n) % len(frame)].reset_index(drop=True)  # more rows, made fast
    frame.loc[1, "text"] = 'A "quoted", comma\tand tab\nthen a second line'
    frame.loc[2, "text"] = "   "  # dropped as blank, in every format
    frame.loc[3, "text"] = "NA"  # a text, not a missing value
    frame["label"] = frame["label"].map({0: "positive", 1: "negative", 2: "neutral"})
    return frame


def write_format(frame: pd.DataFrame, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix in (".csv", ".tsv"):
        frame.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_csv_and_json_lines_are_read_as_parquet_is(tmp_path, suffix):
    """The same rows and string labels give the same data/raw bytes and class names in every format."""
    train, test = tricky_reviews(2 * BATCH_ROWS + 321, seed=1), tricky_reviews(50, seed=2)
    for name, folder in (("parquet", tmp_path / "parquet"), ("other", tmp_path / "other")):
        extension = ".parquet" if name == "parquet" else suffix
        write_format(train, folder / f"train{extension}")
        write_format(test, folder / f"test{extension}")
        write_raw(local_source(folder, "label"), "text", "label", tmp_path / f"raw-{name}")
    for file in ("train.parquet", "test.parquet", "labels.json"):
        assert (tmp_path / "raw-parquet" / file).read_bytes() == (tmp_path / "raw-other" / file).read_bytes(), file
    # string labels are named by their strings, in sorted order
    assert json.loads((tmp_path / "raw-other" / "labels.json").read_text()) == {
        "names": ["negative", "neutral", "positive"]
    }
    raw = pd.read_parquet(tmp_path / "raw-other" / "train.parquet")
    assert raw["text"].tolist()[:3] == [train["text"][0], 'A "quoted", comma\tand tab\nthen a second line', "NA"]
    assert pq.ParquetFile(tmp_path / "raw-other" / "train.parquet").metadata.num_row_groups == 3  # of BATCH_ROWS


def test_a_column_of_digits_stays_text_and_integer_labels_keep_their_order(tmp_path):
    frame = pd.DataFrame({"text": ["007", "42", "1e3", "10"] * 3, "label": [10, 2, 1, 2] * 3})
    frame.to_csv(tmp_path / "train.csv", index=False)
    source = local_source(tmp_path, "label")
    batch = next(source.splits["train"].batches(["text", "label"]))
    assert batch.schema == pa.schema([("text", pa.string()), ("label", pa.int64())])
    write_raw(source, "text", "label", tmp_path / "raw")
    raw = pd.read_parquet(tmp_path / "raw" / "train.parquet")
    assert raw["text"].tolist() == ["007", "42", "1e3", "10"] * 3
    assert json.loads((tmp_path / "raw" / "labels.json").read_text()) == {"names": ["1", "2", "10"]}  # as numbers
    assert raw["label"].tolist() == [2, 1, 0, 1] * 3


def test_csv_labels_are_read_as_one_type_across_the_folder(tmp_path):
    """A word among train's labels, integers alone in test: every label is text, sorted as text."""
    pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["1", "2", "10", "x"]}).to_csv(
        tmp_path / "train.csv", index=False
    )
    pd.DataFrame({"text": ["e", "f"], "label": [10, 1]}).to_csv(tmp_path / "test.csv", index=False)
    source = local_source(tmp_path, "label")
    assert next(source.splits["test"].batches(["label"])).column(0).to_pylist() == ["10", "1"]
    write_raw(source, "text", "label", tmp_path / "raw")
    assert json.loads((tmp_path / "raw" / "labels.json").read_text()) == {"names": ["1", "10", "2", "x"]}
    assert pd.read_parquet(tmp_path / "raw" / "train.parquet")["label"].tolist() == [0, 2, 1, 3]
    assert pd.read_parquet(tmp_path / "raw" / "test.parquet")["label"].tolist() == [1, 0]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("train.json", '[{"text": "a", "label": 0}]\n', "train.json: line 1 is not a JSON object but an array; give"),
        ("train.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1\n', "train.jsonl: line 2 is not JSON ("),
        (
            "train.jsonl",
            '{"text": "a", "label": 0}\n{"text": "b", "label": "pos"}\n',
            "train.jsonl: field 'label' holds integers (line 1) and strings (line 2); give it one JSON type",
        ),
        (
            "train.jsonl",
            '{"text": 5, "label": 0}\n{"text": "b", "label": 1}\n',
            "train.jsonl: field 'text' holds integers (line 1) and strings (line 2); give it one JSON type",
        ),
        ("train.csv", "text,label\na,1\nb,2,3\n", "train.csv: not readable as CSV (CSV parse error: Expected 2"),
        ("train.csv", "", "train.csv: not readable as CSV (Empty CSV file); fix or replace the file"),
    ],
    ids=["json array", "broken json", "mixed label", "mixed text", "ragged csv", "empty csv"],
)
def test_a_malformed_file_is_one_line(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(UserError) as error:
        write_raw(local_source(tmp_path, "label"), "text", "label", tmp_path / "raw")
    assert str(error.value).startswith(f"{tmp_path / name}: {message.split(': ', 1)[1]}"), str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "name, content",
    [("test.parquet", None), ("test.csv", "text,label\n"), ("test.jsonl", ""), ("test.jsonl", "\n\n")],
)
def test_a_split_whose_file_holds_no_rows_is_named_in_one_line(tmp_path, name, content):
    frame = synthetic_reviews(20, 0)
    suffix = name.split(".")[1]
    if suffix == "parquet":
        frame.to_parquet(tmp_path / "train.parquet")
        frame.iloc[:0].to_parquet(tmp_path / name)
    elif suffix == "csv":
        frame.to_csv(tmp_path / "train.csv", index=False)
    else:
        frame.to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(UserError) as error:
        write_raw(local_source(tmp_path, "label"), "text", "label", tmp_path / "raw")
    assert str(error.value) == (
        f"{tmp_path} split 'test': its files hold no rows ({name}); fill them, or move them out of the folder"
    )
    assert not (tmp_path / "raw").exists()


def test_the_files_of_a_split_have_the_same_columns(tmp_path):
    frame = synthetic_reviews(10)
    frame.to_parquet(tmp_path / "train-00000-of-00002.parquet", index=False)
    frame.rename(columns={"text": "review"}).to_parquet(tmp_path / "train-00001-of-00002.parquet", index=False)
    with pytest.raises(UserError) as error:
        local_source(tmp_path, "label")
    assert str(error.value) == (
        f"{tmp_path / 'train-00001-of-00002.parquet'}: columns ['review', 'label'] differ from "
        f"train-00000-of-00002.parquet's ['text', 'label']; give every file of a split the same columns"
    )


def test_json_lines_fields_may_come_late_be_null_or_be_missing(tmp_path):
    """pyarrow's own inference fixes the fields and types from the first block; the scan reads the whole file."""
    lines = [{"text": f"review {i}", "label": None} for i in range(3000)]  # a first block of null labels
    lines += [{"text": "late", "label": "pos", "extra": [1, 2]}, {"label": "neg"}, {"text": "x", "label": 1.5}]
    lines[5]["label"] = 1
    (tmp_path / "train.json").write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")  # .json: JSON lines
    split = local_source(tmp_path, "label").splits["train"]
    assert split.num_rows == 3003 and split.column_names == ["text", "label", "extra"]
    with pytest.raises(UserError, match=re.escape("field 'label' holds integers (line 6) and strings (line 3001)")):
        list(split.batches(["text", "label"]))
    rows = pa.Table.from_batches(list(split.batches(["extra", "text"], 1000)))
    assert rows.num_rows == 3003 and rows.column("text")[-2:].to_pylist() == [None, "x"]
    assert rows.column("extra")[3000].as_py() == [1, 2]


# ---------------------------------------------------------------- memory: a row group is not read whole


def random_texts(n: int, length: int, seed: int = 0) -> pa.Array:
    letters = np.random.default_rng(seed).integers(97, 123, size=(n, length), dtype=np.uint8)
    return pa.array(letters.view(f"S{length}").ravel()).cast(pa.string())


def test_one_big_row_group_is_read_in_batches_holding_a_batch_not_the_row_group(tmp_path, monkeypatch):
    """As pandas writes parquet (a row group of up to a million rows): read batch by batch through a buffered stream."""
    table = pa.table({"text": random_texts(6 * BATCH_ROWS, 300), "label": pa.array(np.arange(6 * BATCH_ROWS) % 2)})
    one, many = tmp_path / "one" / "train.parquet", tmp_path / "many" / "train.parquet"
    for path, group in ((one, None), (many, 1000)):
        path.parent.mkdir()
        pq.write_table(table, path, row_group_size=group)
    assert pq.ParquetFile(one).metadata.num_row_groups == 1
    text_bytes = table.column("text").nbytes
    readers = {
        "dataset folder": lambda folder: local_source(folder, "label").splits["train"].batches(["text", "label"]),
        "split file": lambda folder: splits.iter_batches(folder / "train.parquet", ["text", "label"]),
    }
    for name, read in readers.items():
        base = pa.total_allocated_bytes()
        held = [pa.total_allocated_bytes() - base for _ in read(one.parent)]  # each batch dropped as the next comes
        assert len(held) == 6 and max(held) < text_bytes / 2, (name, max(held), text_bytes)
        batches = list(read(one.parent))
        assert [len(b) for b in batches] == [BATCH_ROWS] * 6, name
        assert pa.Table.from_batches(batches).equals(pa.Table.from_batches(list(read(many.parent)))), name
    # what bounds it: without the buffered stream, pyarrow reads a row group's whole column chunk
    monkeypatch.setattr(files, "READ_BUFFER_BYTES", 0)
    base = pa.total_allocated_bytes()
    held = [pa.total_allocated_bytes() - base for _ in readers["dataset folder"](one.parent)]
    assert max(held) > text_bytes
