"""Stage build_vocab: data/split/train.parquet -> data/vocab.txt (line i is token id i)."""
import _root  # noqa: F401  (first: imports textrnn from this checkout)
import logging
from pathlib import Path

from textrnn.data import read_labels, read_split
from textrnn.errors import cli_main
from textrnn.params import load_params
from textrnn.preprocess import count_tokens, resolve_workers
from textrnn.vocab import Vocab

SPLIT_DIR, VOCAB_PATH = Path("data/split"), Path("data/vocab.txt")
log = logging.getLogger("build_vocab")


@cli_main
def main() -> None:
    params = load_params("vocab")
    train = read_split(SPLIT_DIR / "train.parquet", len(read_labels(SPLIT_DIR)))
    counts = count_tokens(train["text"].tolist(), resolve_workers(params["workers"]))
    vocab = Vocab.build(counts, min_freq=params["min_freq"], max_size=params["max_size"])
    vocab.save(VOCAB_PATH)
    log.info("build_vocab: %d distinct tokens in train, %d kept (min_freq %d) -> %s",
             len(counts), len(vocab), params["min_freq"], VOCAB_PATH)


if __name__ == "__main__":
    main()
