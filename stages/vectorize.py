"""Stage vectorize: data/split + data/vocab.txt -> data/vectors/{train,valid,test}.npz."""
import _root  # noqa: F401  (first: imports textrnn from this checkout)
import logging
from pathlib import Path

import numpy as np

from textrnn.data import SPLITS, EncodedSplit, read_labels, read_split
from textrnn.errors import cli_main
from textrnn.io import atomic_dir
from textrnn.params import load_params
from textrnn.preprocess import encode_texts, resolve_workers
from textrnn.vocab import UNK_ID, Vocab

SPLIT_DIR, VOCAB_PATH, OUT_DIR = Path("data/split"), Path("data/vocab.txt"), Path("data/vectors")
log = logging.getLogger("vectorize")


@cli_main
def main() -> None:
    params = load_params("vectorize")
    vocab = Vocab.load(VOCAB_PATH)
    label_names = read_labels(SPLIT_DIR)
    frames = {name: read_split(SPLIT_DIR / f"{name}.parquet", len(label_names)) for name in SPLITS}
    with atomic_dir(OUT_DIR) as out_dir:  # all three files replace the old ones at once, or none does
        for name, frame in frames.items():
            ids, offsets = encode_texts(frame["text"].tolist(), vocab, resolve_workers(params["workers"]))
            EncodedSplit(ids, offsets, frame["label"].to_numpy(np.int64), label_names).save(out_dir / f"{name}.npz")
            log.info("vectorize: %s: %d reviews, %d tokens (%.1f%% <unk>), longest %d -> %s", name, len(frame),
                     len(ids), 100 * float(np.mean(ids == UNK_ID)) if len(ids) else 0.0,
                     int(np.diff(offsets).max(initial=0)), OUT_DIR / f"{name}.npz")


if __name__ == "__main__":
    main()
