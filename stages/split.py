"""Stage split: data/raw -> data/split/{train,valid,test}.parquet, stratified on label."""
import _root  # noqa: F401  (first: imports textrnn from this checkout)
import logging
from pathlib import Path

from textrnn.data import read_labels, read_split, stratified_split, write_split_dir
from textrnn.errors import cli_main
from textrnn.params import load_params

RAW_DIR, OUT_DIR = Path("data/raw"), Path("data/split")
log = logging.getLogger("split")


@cli_main
def main() -> None:
    params = load_params("split")
    label_names = read_labels(RAW_DIR)
    train = read_split(RAW_DIR / "train.parquet", len(label_names))
    test_path = RAW_DIR / "test.parquet"
    if test_path.exists():
        test = read_split(test_path, len(label_names))
    else:
        train, test = stratified_split(train, params["test_size"], params["seed"], "test",
                                       str(RAW_DIR / "train.parquet"), label_names)
        log.info("split: the dataset has no test split; carved %d rows out of train", len(test))
    train, valid = stratified_split(train, params["valid_size"], params["seed"], "valid",
                                    str(RAW_DIR / "train.parquet"), label_names)
    write_split_dir(OUT_DIR, {"train": train, "valid": valid, "test": test}, label_names)
    log.info("split: train %d, valid %d, test %d rows -> %s", len(train), len(valid), len(test), OUT_DIR)


if __name__ == "__main__":
    main()
