"""Stage download: the HF dataset (hub id or local parquet folder) -> data/raw/{train,test}.parquet."""
import _root  # noqa: F401  (first: imports textrnn from this checkout)
import logging
from pathlib import Path

from textrnn.data import label_names_from_features, load_hf_dataset, standardize_splits, write_split_dir
from textrnn.errors import cli_main
from textrnn.params import load_params

OUT_DIR = Path("data/raw")
log = logging.getLogger("download")


@cli_main
def main() -> None:
    params = load_params("download")
    splits, features = load_hf_dataset(params["dataset"], params["revision"])
    label_names = label_names_from_features(features, params["label_column"])
    frames, label_names = standardize_splits(
        splits, params["text_column"], params["label_column"], label_names, source=params["dataset"]
    )
    write_split_dir(OUT_DIR, frames, label_names)
    sizes = ", ".join(f"{name} {len(frame)}" for name, frame in frames.items())
    log.info("download: %s -> %s (%s rows; classes %s)", params["dataset"], OUT_DIR, sizes, label_names)


if __name__ == "__main__":
    main()
