"""Score reviews with a trained checkpoint: one JSON object per review, in input order.

Defined answers for odd inputs:

- An empty or whitespace-only review has no tokens: the RNN's state stays at its initial
  value (zeros), so its logits are V's bias. A review of unknown words only is a run of
  ``<unk>`` ids and gets the model's answer for that run.
- Bytes from ``--file`` or stdin are decoded as UTF-8 with ``errors="replace"``: an invalid
  byte becomes U+FFFD (scored like any other character), never a decoding error.
- A review longer than the training run's ``max_tokens`` (in the checkpoint's metadata) keeps its
  last ``max_tokens`` tokens, as in training; with ``max_tokens`` null the whole review is scored
  (100k tokens: about a second on CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from textrnn.data import EncodedSplit
from textrnn.errors import UserError
from textrnn.model import RNN, load_checkpoint, predicted_labels, probabilities
from textrnn.preprocess import encode_texts
from textrnn.training import predict_logits
from textrnn.vocab import Vocab

DEFAULT_MODEL = Path("models/model.pt")
DEFAULT_VOCAB = Path("data/vocab.txt")
DEFAULT_BATCH_SIZE = 64


def encode_reviews(texts: Sequence[str], vocab: Vocab) -> EncodedSplit:
    """``texts`` as token ids, exactly as the vectorize stage encodes them (labels are placeholders)."""
    ids, offsets = encode_texts(texts, vocab, workers=1)
    return EncodedSplit(ids, offsets, np.zeros(len(texts), dtype=np.int64), [])


def predict_texts(model: RNN, vocab: Vocab, label_names: Sequence[str], texts: Sequence[str],
                  batch_size: int = DEFAULT_BATCH_SIZE, device: torch.device = torch.device("cpu"),
                  max_tokens: Optional[int] = None) -> List[Dict[str, object]]:
    """One ``{"index", "label", "probabilities"}`` dict per text, in order; independent of batching."""
    logits = predict_logits(model, encode_reviews(texts, vocab), batch_size, device, max_tokens)
    probs = probabilities(logits).tolist()
    labels = predicted_labels(logits).tolist()
    return [{"index": i, "label": label_names[label], "probabilities": dict(zip(label_names, p))}
            for i, (label, p) in enumerate(zip(labels, probs))]


def load_predictor(model_path: Path, vocab_path: Path) -> Tuple[RNN, Vocab, List[str], Optional[int]]:
    """The checkpoint's model, label names and max_tokens, and the vocabulary it was trained with."""
    model, label_names, metadata = load_checkpoint(model_path)
    vocab = Vocab.load(vocab_path)
    if len(vocab) != model.config.vocabulary_size:
        raise UserError(f"{vocab_path} has {len(vocab)} tokens but {model_path} was trained on "
                        f"{model.config.vocabulary_size}; pass the vocabulary it was trained with (--vocab) "
                        f"or retrain with `dvc repro train`")
    if len(label_names) != model.config.num_classes:
        raise UserError(f"{model_path}: {len(label_names)} label names for {model.config.num_classes} classes; "
                        f"retrain with `dvc repro -f train`")
    return model, vocab, label_names, metadata.get("max_tokens")


def split_lines(data: bytes) -> List[str]:
    """One review per line of ``data`` (UTF-8, invalid bytes -> U+FFFD); blank lines are reviews too."""
    if not data:
        return []
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another review
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _from_argv(text: str) -> str:
    # Python decodes invalid UTF-8 in argv to lone surrogates; give them the same U+FFFD as files get.
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def read_inputs(texts: Sequence[str], file: Optional[str], stdin=None) -> List[str]:
    """The reviews to score: the TEXT arguments, or the lines of ``file`` (``-`` = stdin).

    With neither, stdin is read when it is not a terminal (a pipe or a redirect).
    """
    stdin = sys.stdin if stdin is None else stdin
    if texts and file is not None:
        raise UserError("give reviews as TEXT arguments or with --file, not both")
    if texts:
        return [_from_argv(text) for text in texts]
    if file is None:
        if stdin.isatty():
            raise UserError("nothing to score: give TEXT arguments, --file PATH, or --file - to read stdin")
        file = "-"
    if file == "-":
        return split_lines(stdin.buffer.read())
    path = Path(file)
    try:
        return split_lines(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: input file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder; --file takes a text file with one review per line") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None


def _whole_number(value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {value!r}")
    return number


def _positive_int(value: str) -> int:
    return _whole_number(value, 1)


def _non_negative_int(value: str) -> int:
    return _whole_number(value, 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="reviews to score, one per argument")
    parser.add_argument("--file", metavar="PATH",
                        help="read one review per line from PATH ('-' = stdin, read to its end); "
                             "without TEXT or --file, stdin is read when it is a pipe or a redirect")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, metavar="PATH",
                        help="checkpoint (default: %(default)s)")
    parser.add_argument("--vocab", type=Path, default=DEFAULT_VOCAB, metavar="PATH",
                        help="vocabulary the model was trained with (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE, metavar="N",
                        help="reviews scored together, grouped by length; results do not depend on it "
                             "(default: %(default)s)")
    parser.add_argument("--threads", type=_non_negative_int, default=1, metavar="N",
                        help="CPU threads for torch; 0 = torch's default (default: %(default)s: one "
                             "step of this small RNN is too small to split, and extra threads only wait)")


DESCRIPTION = """\
Print one JSON object per review on stdout, in input order:
{"index": i, "label": NAME, "probabilities": {NAME: p, ...}} with the checkpoint's label names.
Input bytes are decoded as UTF-8 with invalid bytes replaced by U+FFFD; blank lines are reviews.
An empty or whitespace-only review has no tokens, so the hidden state stays zero and the
answer is V's bias; a review of unknown words only is scored as that many <unk> tokens.
Reviews longer than the training run's max_tokens keep their last max_tokens tokens."""


def run(args: argparse.Namespace) -> None:
    """The ``predict`` command: read, score, print JSON lines."""
    if args.threads:
        torch.set_num_threads(args.threads)
    model, vocab, label_names, max_tokens = load_predictor(args.model, args.vocab)
    texts = read_inputs(args.texts, args.file)
    results = predict_texts(model, vocab, label_names, texts, args.batch_size, max_tokens=max_tokens)
    try:
        sys.stdout.writelines(json.dumps(result) + "\n" for result in results)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader (`| head`) left early: stop quietly, as the Python docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
