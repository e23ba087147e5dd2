"""One label contract across every file of a dataset; unlabelled splits; what becomes test; leakage.

Each case writes tiny parquet files and calls download's ``write_raw`` or the split stage's ``run``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_project, run, synthetic_reviews

from textrnn.core.errors import UserError
from textrnn.data.raw import write_raw
from textrnn.data.sources import find_split_files, hub_source, local_source
from textrnn.pipeline import split

SPLIT_PARAMS = {"valid_size": 0.2, "test_size": 0.2, "seed": 42, "valid_from": "auto", "test_from": "auto"}


def write(path: Path, texts, labels, names=None, label_type=None, label_features=None) -> Path:
    """A parquet file as Hugging Face writes one: ``names`` (when given) as the label's ClassLabel in the metadata."""
    table = pa.table({"text": pa.array(texts), "label": pa.array(labels, label_type)})
    if names is not None or label_features is not None:
        label = label_features if label_features is not None else {"names": names, "_type": "ClassLabel"}
        features = {"text": {"dtype": "string", "_type": "Value"}, "label": label}
        table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def reviews(n: int, seed: int) -> tuple[list[str], list[int]]:
    """``n`` synthetic reviews (label 1 = positive words, 0 = negative), alternating."""
    frame = synthetic_reviews(n, seed)
    return frame["text"].tolist(), frame["label"].tolist()


def raw(tmp_path: Path, dataset: Path) -> Path:
    write_raw(local_source(dataset, "label"), "text", "label", tmp_path / "raw")
    return tmp_path / "raw"


def names_of(directory: Path) -> list[str]:
    return json.loads((directory / "labels.json").read_text())["names"]


def read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def refused(tmp_path: Path, dataset: Path) -> str:
    with pytest.raises(UserError) as error:
        write_raw(local_source(dataset, "label"), "text", "label", tmp_path / "raw")
    return str(error.value)


# ---------------------------------------------------------------- class names, file by file


def test_the_same_names_in_another_order_are_mapped_by_name(tmp_path, caplog):
    """train [neg, pos], test [pos, neg] with ids to match: every stage used to take train's names for
    test's ids, flipping test's labels (the baseline scored 0.116 instead of 0.884)."""
    texts, labels = reviews(40, 0)
    test_texts, test_labels = reviews(20, 1)
    dataset = tmp_path / "dataset"
    write(dataset / "train.parquet", texts, labels, ["neg", "pos"])
    write(dataset / "test.parquet", test_texts, [1 - label for label in test_labels], ["pos", "neg"])
    with caplog.at_level(logging.INFO):
        out = raw(tmp_path, dataset)
    assert names_of(out) == ["neg", "pos"]  # the order of train's file
    assert read(out / "test.parquet")["label"].tolist() == test_labels  # pos is 1 in every file
    assert read(out / "train.parquet")["label"].tolist() == labels
    assert (
        f"{dataset / 'test.parquet'} lists the classes in another order (['pos', 'neg']); its ids are mapped "
        f"by name to ['neg', 'pos']"
    ) in caplog.text


def test_the_hub_path_maps_names_per_split_and_keeps_the_unsupervised_split(tmp_path, monkeypatch):
    """The Hub keeps ClassLabel names per split: the same contract (no network: a DatasetDict built here)."""
    import datasets

    def split_of(texts, labels, names):
        features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
        return datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)

    texts, labels = reviews(40, 0)
    test_texts, test_labels = reviews(20, 1)
    loaded = datasets.DatasetDict(
        train=split_of(texts, labels, ["neg", "pos"]),
        test=split_of(test_texts, [1 - label for label in test_labels], ["pos", "neg"]),
        unsupervised=split_of(["an unlabelled review", "another one"], [-1, -1], ["neg", "pos"]),
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda dataset_id, revision=None: loaded)
    rows = write_raw(hub_source("someone/reviews", "abc", "label"), "text", "label", tmp_path / "raw")
    assert rows == {"train": 40, "test": 20}
    assert names_of(tmp_path / "raw") == ["neg", "pos"]
    assert read(tmp_path / "raw/test.parquet")["label"].tolist() == test_labels
    unlabelled = read(tmp_path / "raw/unlabelled.parquet")
    assert unlabelled.to_dict("list") == {
        "text": ["an unlabelled review", "another one"],
        "split": ["unlabelled", "unlabelled"],
    }


@pytest.mark.parametrize(
    "case, test_names, message",
    [
        (
            "duplicate",
            ["pos", "pos"],
            "test.parquet: the ClassLabel names ['pos', 'pos'] give 'pos' twice; give each class its own name",
        ),
        (
            "not strings",
            [0, 1],
            "test.parquet: its ClassLabel names [0, 1] are not a list of strings; write the file again with "
            "string class names (or without a ClassLabel)",
        ),
        (
            "other names",
            ["negative", "positive"],
            "test.parquet: its ClassLabel names ['negative', 'positive'] differ from {train}'s ['neg', 'pos']; "
            "every file of a dataset must name the same classes: write it again with those names",
        ),
    ],
)
def test_names_that_cannot_be_one_contract_are_refused(tmp_path, case, test_names, message):
    dataset = tmp_path / "dataset"
    write(dataset / "train.parquet", *reviews(20, 0), ["neg", "pos"])
    write(dataset / "test.parquet", *reviews(10, 1), test_names)
    assert refused(tmp_path, dataset) == f"{dataset}/" + message.format(train=dataset / "train.parquet")
    assert not (tmp_path / "raw" / "labels.json").exists()


def test_duplicate_names_in_train_are_refused_too(tmp_path):
    dataset = tmp_path / "dataset"
    write(dataset / "train.parquet", *reviews(20, 0), ["pos", "pos"])
    assert refused(tmp_path, dataset).endswith(
        "train.parquet: the ClassLabel names ['pos', 'pos'] give 'pos' twice; give each class its own name"
    )


def test_a_file_without_names_beside_named_files_holds_ids_in_their_order(tmp_path):
    dataset = tmp_path / "dataset"
    texts, labels = reviews(20, 0)
    write(dataset / "train.parquet", texts, labels, ["neg", "pos"])
    write(dataset / "test.parquet", texts[:4], [1, 0, 1, 1])
    out = raw(tmp_path, dataset)
    assert names_of(out) == ["neg", "pos"] and read(out / "test.parquet")["label"].tolist() == [1, 0, 1, 1]
    write(dataset / "test.parquet", texts[:4], [1, 0, 2, 1])
    assert refused(tmp_path, dataset) == (
        f"{dataset / 'test.parquet'}: label 2 is outside the classes ['neg', 'pos'] (0..1) in 1 of its 4 rows; "
        f"check download.label_column or the data"
    )


def test_a_declared_class_that_no_row_holds_is_left_out_and_the_ids_closed_up(tmp_path, caplog):
    dataset = tmp_path / "dataset"
    write(dataset / "train.parquet", ["a", "b", "c", "d"], [0, 2, 2, 0], ["sad", "meh", "glad"])
    write(dataset / "test.parquet", ["e", "f"], [2, 0], ["sad", "meh", "glad"])
    out = raw(tmp_path, dataset)
    assert names_of(out) == ["sad", "glad"]
    assert read(out / "train.parquet")["label"].tolist() == [0, 1, 1, 0]
    assert read(out / "test.parquet")["label"].tolist() == [1, 0]
    assert "classes ['meh'] are declared by the ClassLabel names but no labelled row holds them" in caplog.text


@pytest.mark.parametrize("named", [True, False])
def test_a_class_in_test_but_not_in_train_is_refused(tmp_path, named):
    dataset = tmp_path / "dataset"
    names = ["a", "b", "c"] if named else None
    write(dataset / "train.parquet", ["a", "b", "c", "d"], [0, 1, 1, 0], names)
    write(dataset / "test.parquet", ["e", "f", "g"], [2, 0, 2], names)
    name = "c" if named else "2"
    assert refused(tmp_path, dataset) == (
        f"{dataset}: class {name!r} has no row in train (2 in test); a model cannot learn a class it never sees: "
        f"add train rows of it, or remove its rows from the other splits"
    )


# ---------------------------------------------------------------- what a label may be


@pytest.mark.parametrize(
    "labels, label_type, message",
    [
        (
            [0, 1, None, 1],
            pa.int64(),
            "split 'train': 1 of 4 rows have no label (null, NaN or -1; 1 in {file}); drop those rows, or, if "
            "the split has no labels at all, name its files unsupervised",
        ),
        (
            [0.0, 1.0, float("nan"), 1.0],
            pa.float64(),
            "split 'train': 1 of 4 rows have no label (null, NaN or -1; 1 in {file}); drop those rows, or, if "
            "the split has no labels at all, name its files unsupervised",
        ),
        (
            [0.0, 1.5, 1.0, 0.0],
            pa.float64(),
            "{file}: label 1.5 in column 'label' is not a whole number; class ids are integers 0..k-1: map the "
            "labels to integers or strings, or set download.label_column",
        ),
        (
            [[0], [1], [1], [0]],
            pa.list_(pa.int64()),
            "{file}: column 'label' holds list<element: int64>, not class ids or names; set download.label_column "
            "to a column of integers or strings",
        ),
        (
            [{"id": 0}, {"id": 1}, {"id": 1}, {"id": 0}],
            pa.struct([("id", pa.int64())]),
            "{file}: column 'label' holds struct<id: int64>, not class ids or names; set download.label_column "
            "to a column of integers or strings",
        ),
        (
            [True, False, True, False],
            pa.bool_(),
            "{file}: column 'label' holds booleans, not class ids or names; store the labels as integers (0, 1) "
            "or strings, or set download.label_column",
        ),
    ],
    ids=["null", "nan", "fraction", "list", "struct", "bool"],
)
def test_labels_that_are_no_class_are_refused_in_one_line(tmp_path, labels, label_type, message):
    dataset = tmp_path / "dataset"
    file = write(dataset / "train.parquet", ["a", "b", "c", "d"], labels, label_type=label_type)
    expected = message.format(file=file)
    assert refused(tmp_path, dataset) == (expected if expected.startswith(str(file)) else f"{dataset} {expected}")


def test_integer_labels_in_one_file_and_strings_in_another_are_refused(tmp_path):
    dataset = tmp_path / "dataset"
    train = write(dataset / "train.parquet", ["a", "b"], [0, 1])
    test = write(dataset / "test.parquet", ["c", "d"], ["neg", "pos"])
    assert refused(tmp_path, dataset) == (
        f"{dataset}: the labels are integers in some files and strings in others ({train}: int, {test}: str); "
        f"give them one type"
    )


def test_some_minus_one_labels_in_a_labelled_split_are_refused_with_the_counts(tmp_path):
    dataset = tmp_path / "dataset"
    write(dataset / "train.parquet", *reviews(20, 0), ["neg", "pos"])
    file = write(dataset / "test.parquet", ["a", "b", "c"], [0, -1, 1], ["neg", "pos"])
    assert refused(tmp_path, dataset) == (
        f"{dataset} split 'test': 1 of 3 rows have no label (null, NaN or -1; 1 in {file}); drop those rows, "
        f"or, if the split has no labels at all, name its files unsupervised"
    )


def test_whole_float_labels_are_ids_and_minus_one_is_a_class_when_train_has_it_among_others(tmp_path):
    dataset = tmp_path / "dataset"
    write(dataset / "train.parquet", ["a", "b", "c", "d"], [1.0, 0.0, 1.0, 0.0])
    assert names_of(raw(tmp_path, dataset)) == ["0", "1"]
    write(dataset / "train.parquet", ["a", "b", "c", "d"], [-1, 1, 1, -1])  # sentiment as -1 / +1, no names
    out = raw(tmp_path / "again", dataset)
    assert names_of(out) == ["-1", "1"] and read(out / "train.parquet")["label"].tolist() == [0, 1, 1, 0]


def test_a_text_column_that_is_not_text_is_refused(tmp_path):
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    pq.write_table(pa.table({"text": [1, 2, 3], "label": [0, 1, 0]}), dataset / "train.parquet")
    assert refused(tmp_path, dataset) == (
        f"{dataset / 'train.parquet'}: column 'text' holds int64, not text; set download.text_column to the "
        f"column of texts"
    )


def test_a_train_split_without_labels_is_refused(tmp_path):
    dataset = tmp_path / "dataset"
    write(dataset / "train.parquet", ["a", "b"], [-1, -1], ["neg", "pos"])
    assert refused(tmp_path, dataset) == (
        f"{dataset} split 'train': none of its 2 rows has a label (every one null, NaN or -1); a classifier "
        f"needs labelled train rows: check download.label_column or the data"
    )


# ---------------------------------------------------------------- unlabelled splits and what becomes test


def glue_folder(directory: Path, names: list[str] | None) -> Path:
    """GLUE's layout: train and validation labelled, test labelled -1 throughout."""
    write(directory / "train.parquet", *reviews(100, 0), names)
    write(directory / "validation.parquet", *reviews(30, 1), names)
    test_texts, _ = reviews(30, 2)
    write(directory / "test.parquet", test_texts, [-1] * 30, names)
    return directory


@pytest.mark.parametrize("names", [["neg", "pos"], None], ids=["ClassLabel", "no ClassLabel"])
def test_a_glue_style_test_split_is_unlabelled_and_validation_becomes_test(tmp_path, names, caplog):
    dataset = glue_folder(tmp_path / "dataset", names)
    caplog.set_level(logging.INFO)
    rows = write_raw(local_source(dataset, "label"), "text", "label", tmp_path / "raw")
    assert rows == {"train": 100, "valid": 30}
    assert names_of(tmp_path / "raw") == (names or ["0", "1"])  # never a '-1' class
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [
        "labels.json",
        "train.parquet",
        "unlabelled.parquet",
        "valid.parquet",
    ]
    unlabelled = read(tmp_path / "raw/unlabelled.parquet")
    assert unlabelled["text"].tolist() == reviews(30, 2)[0] and set(unlabelled["split"]) == {"test"}
    assert (
        f"{dataset} split 'test' has no labels (all 30 rows null, NaN or -1): its 30 texts are kept in "
        f"unlabelled.parquet as unlabelled text, never a class nor scored"
    ) in caplog.text

    sizes = split.run(SPLIT_PARAMS, tmp_path / "raw", tmp_path / "split", tmp_path / "data.json")
    assert sizes == {"train": 80, "valid": 20, "test": 30}
    assert read(tmp_path / "split/test.parquet").equals(read(tmp_path / "raw/valid.parquet"))
    assert (
        "split: test is the dataset's own validation split (split.test_from: auto; the dataset's test split has "
        "no labels (30 rows kept as unlabelled text): GLUE-style, results are reported on validation)"
    ) in caplog.text
    assert names_of(tmp_path / "split") == (names or ["0", "1"])


def test_a_test_file_without_the_label_column_is_unlabelled(tmp_path, caplog):
    dataset = tmp_path / "dataset"
    write(dataset / "train.parquet", *reviews(40, 0))
    dataset.joinpath("test.parquet").unlink(missing_ok=True)
    pq.write_table(pa.table({"text": ["first", "second"]}), dataset / "test.parquet")
    caplog.set_level(logging.INFO)
    assert write_raw(local_source(dataset, "label"), "text", "label", tmp_path / "raw") == {"train": 40}
    assert read(tmp_path / "raw/unlabelled.parquet").to_dict("list") == {
        "text": ["first", "second"],
        "split": ["test", "test"],
    }
    assert f"{dataset} split 'test' has no labels (no column 'label'): its 2 texts are kept" in caplog.text


def test_the_hub_layout_of_imdb_reads_train_test_and_unsupervised(tmp_path):
    """The Hub's IMDB: train, test and unsupervised (every label -1, IMDB's ClassLabel kept in the schema)."""
    dataset = tmp_path / "dataset"
    write(dataset / "train.parquet", *reviews(40, 0), ["neg", "pos"])
    write(dataset / "test.parquet", *reviews(20, 1), ["neg", "pos"])
    write(dataset / "unsupervised.parquet", ["one more", " ", "and another"], [-1, -1, -1], ["neg", "pos"])
    assert {name: [p.name for p in files] for name, files in find_split_files(dataset).items()} == {
        "test": ["test.parquet"],
        "train": ["train.parquet"],
        "unlabelled": ["unsupervised.parquet"],
    }
    rows = write_raw(local_source(dataset, "label"), "text", "label", tmp_path / "raw")
    assert rows == {"test": 20, "train": 40} and names_of(tmp_path / "raw") == ["neg", "pos"]
    assert read(tmp_path / "raw/unlabelled.parquet").to_dict("list") == {
        "text": ["one more", "and another"],  # a blank text dropped, as in every split
        "split": ["unlabelled", "unlabelled"],
    }
    sizes = split.run(SPLIT_PARAMS, tmp_path / "raw", tmp_path / "split")
    assert sizes == {"train": 32, "valid": 8, "test": 20}  # the dataset's test, as without the third file


@pytest.mark.parametrize(
    "test_from, valid_from, sizes, message",
    [
        ("train", "auto", {"train": 80, "valid": 30, "test": 20}, None),  # test carved; valid is validation
        ("validation", "auto", {"train": 80, "valid": 20, "test": 30}, None),
        (
            "dataset",
            "auto",
            None,
            "split.test_from is 'dataset' but the dataset's test split has no labels "
            "(30 rows kept as unlabelled text); set split.test_from: auto",
        ),
        (
            "validation",
            "dataset",
            None,
            "split.test_from is 'validation' and split.valid_from is 'dataset': the "
            "dataset's validation split cannot be both; set split.valid_from: auto to carve valid out of train",
        ),
        ("auto", "dataset", {"train": 80, "valid": 30, "test": 20}, None),  # valid keeps validation; test carved
    ],
)
def test_split_test_from(tmp_path, test_from, valid_from, sizes, message):
    write_raw(
        local_source(glue_folder(tmp_path / "dataset", ["neg", "pos"]), "label"), "text", "label", tmp_path / "raw"
    )
    params = dict(SPLIT_PARAMS, test_from=test_from, valid_from=valid_from)
    if message is not None:
        with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
            split.run(params, tmp_path / "raw", tmp_path / "split")
        assert not (tmp_path / "split").exists()
    else:
        assert split.run(params, tmp_path / "raw", tmp_path / "split") == sizes
        test = set(read(tmp_path / "split/test.parquet")["text"])
        carved = test <= set(read(tmp_path / "raw/train.parquet")["text"])
        assert carved == (test_from != "validation")
        assert (test == set(read(tmp_path / "raw/valid.parquet")["text"])) == (test_from == "validation")


def test_test_from_dataset_without_a_test_split_and_train_leaving_the_own_test_out(tmp_path, caplog):
    dataset = tmp_path / "dataset"
    write(dataset / "train.parquet", *reviews(100, 0), ["neg", "pos"])
    out = raw(tmp_path, dataset)
    with pytest.raises(UserError, match=r"^split.test_from is 'dataset' but the dataset has no test split; set"):
        split.run(dict(SPLIT_PARAMS, test_from="dataset"), out, tmp_path / "split")
    write(dataset / "test.parquet", *reviews(30, 1), ["neg", "pos"])
    out = raw(tmp_path / "again", dataset)
    caplog.set_level(logging.INFO)
    assert split.run(dict(SPLIT_PARAMS, test_from="train"), out, tmp_path / "split") == {
        "train": 64,
        "valid": 16,
        "test": 20,
    }
    assert "split.test_from: train (the dataset's own test split is left out)" in caplog.text


def test_an_unlabelled_validation_split_leaves_valid_to_be_carved(tmp_path, caplog):
    dataset = tmp_path / "dataset"
    write(dataset / "train.parquet", *reviews(100, 0))
    write(dataset / "validation.parquet", ["x", "y"], [None, None], label_type=pa.int64())
    write(dataset / "test.parquet", *reviews(30, 1))
    out = raw(tmp_path, dataset)
    assert read(out / "unlabelled.parquet")["split"].tolist() == ["valid", "valid"]
    with pytest.raises(UserError, match=r"^split.valid_from is 'dataset' but its validation split has no labels; set"):
        split.run(dict(SPLIT_PARAMS, valid_from="dataset"), out, tmp_path / "split")
    caplog.set_level(logging.INFO)
    assert split.run(SPLIT_PARAMS, out, tmp_path / "split") == {"train": 80, "valid": 20, "test": 30}
    assert "split: valid is 0.2 of train, stratified (the dataset's validation split has no labels)" in caplog.text


# ---------------------------------------------------------------- leakage


def test_rows_of_valid_and_test_whose_text_train_has_are_counted(tmp_path, caplog):
    dataset = tmp_path / "dataset"
    texts, labels = reviews(20, 0)
    write(dataset / "train.parquet", texts, labels, ["neg", "pos"])
    valid_texts, valid_labels = reviews(8, 1)
    valid_texts[3] = texts[5]  # one shared text
    write(dataset / "validation.parquet", valid_texts, valid_labels, ["neg", "pos"])
    test_texts, test_labels = reviews(10, 2)
    test_texts[0], test_texts[4], test_texts[9] = texts[0], texts[0], texts[19]  # three rows, two texts of train
    test_texts[1] = texts[1] + " "  # not the same text
    write(dataset / "test.parquet", test_texts, test_labels, ["neg", "pos"])
    caplog.set_level(logging.INFO)
    split.run(SPLIT_PARAMS, raw(tmp_path, dataset), tmp_path / "split", tmp_path / "metrics/data.json")
    assert json.loads((tmp_path / "metrics/data.json").read_text()) == {
        "train": {"rows": 20},
        "valid": {"rows": 8, "duplicates_of_train": 1, "duplicate_share": 0.125},
        "test": {"rows": 10, "duplicates_of_train": 3, "duplicate_share": 0.3},
    }
    assert "split: rows whose text is also a train text: valid 1 of 8 (12.50%), test 3 of 10 (30.00%)" in caplog.text


def test_leakage_is_counted_against_the_carved_train_split(tmp_path):
    """valid carved from train: a text twice in the dataset's train lands in both sides or one."""
    dataset = tmp_path / "dataset"
    texts, labels = reviews(200, 0)
    texts[10:20] = texts[0:10]  # ten texts twice (labels alternate, so each pair shares its label)
    write(dataset / "train.parquet", texts, labels, ["neg", "pos"])
    write(dataset / "test.parquet", *reviews(10, 1), ["neg", "pos"])
    split.run(SPLIT_PARAMS, raw(tmp_path, dataset), tmp_path / "split", tmp_path / "data.json")
    train = set(read(tmp_path / "split/train.parquet")["text"])
    valid = read(tmp_path / "split/valid.parquet")["text"]
    expected = int(valid.isin(train).sum())
    assert 0 < expected < 10
    assert json.loads((tmp_path / "data.json").read_text())["valid"]["duplicates_of_train"] == expected


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
def test_dvc_repro_on_a_glue_style_folder_trains_two_classes(tmp_path):
    dataset = glue_folder(tmp_path / "dataset", None)
    project = make_project(tmp_path / "project", dataset, {"baseline": {"enabled": False}})
    result = run([sys.executable, "-m", "dvc", "repro"], project)
    assert "has no labels" in result.stderr + result.stdout
    assert names_of(project / "data/raw") == names_of(project / "data/split") == ["0", "1"]
    from textrnn.model import load_checkpoint

    checkpoint = load_checkpoint(project / "models/model.pt")
    assert checkpoint.label_names == ["0", "1"] and checkpoint.model.config.num_classes == 2
    metrics = json.loads((project / "metrics/metrics.json").read_text())
    assert set(metrics) == {"train", "valid", "test"} and 0 <= metrics["test"]["accuracy"] <= 1
    assert len(read(project / "data/split/test.parquet")) == 30  # the dataset's validation split
    data = json.loads((project / "metrics/data.json").read_text())
    assert data["test"] == {"rows": 30, "duplicates_of_train": 0, "duplicate_share": 0.0}
    shown = run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], project).stdout
    assert "duplicates_of_train" in shown


def test_the_hubs_glue_sst2_is_two_classes_with_validation_as_test(tmp_path, monkeypatch):
    """nyu-mll/glue's sst2 as the Hub serves it (no network: a DatasetDict built here): a configuration to
    name, train and validation labelled, test all -1 under the ClassLabel names."""
    import datasets
    from textrnn.pipeline import download

    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])}
    )

    def split_of(texts, labels):
        return datasets.Dataset.from_dict({"sentence": texts, "label": labels}, features=features)

    texts, labels = reviews(100, 0)
    valid_texts, valid_labels = reviews(30, 1)
    test_texts, _ = reviews(30, 2)
    loaded = datasets.DatasetDict(
        train=split_of(texts, labels),
        validation=split_of(valid_texts, valid_labels),
        test=split_of(test_texts, [-1] * 30),
    )
    asked = []

    def load_dataset(dataset_id, *config, revision=None):
        if not config:
            raise ValueError("Config name is missing.\nPlease pick one among the available configs: ['cola', 'sst2']")
        asked.append((dataset_id, *config, revision))
        return loaded

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    params = {
        "dataset": "unused",
        "hub": "nyu-mll/glue",
        "config": None,
        "revision": None,
        "text_column": "sentence",
        "label_column": "label",
    }
    with pytest.raises(UserError) as error:
        download.run(params, tmp_path / "raw")
    assert str(error.value) == (
        "cannot load dataset 'nyu-mll/glue': ValueError: Config name is missing.; name one with download.config "
        "(e.g. `-S download.config=sst2` for nyu-mll/glue)"
    )
    assert not (tmp_path / "raw").exists()
    assert download.run({**params, "config": "sst2"}, tmp_path / "raw") == {"train": 100, "valid": 30}
    assert asked == [("nyu-mll/glue", "sst2", None)]
    assert names_of(tmp_path / "raw") == ["negative", "positive"]
    sizes = split.run(SPLIT_PARAMS, tmp_path / "raw", tmp_path / "split", tmp_path / "data.json")
    assert sizes == {"train": 80, "valid": 20, "test": 30}
    assert read(tmp_path / "split/test.parquet")["label"].tolist() == valid_labels
