"""Score reviews with a trained checkpoint: one JSON object per review, in input order.

Defined answers for odd inputs:

- An empty or whitespace-only review has no tokens: the RNN's state stays at its initial
  value (zeros), so its logits are V's bias. A review of unknown words only is a run of
  ``<unk>`` ids and gets the model's answer for that run.
- Bytes from ``--file`` or stdin are decoded as UTF-8 with ``errors="replace"``: an invalid
  byte becomes U+FFFD (scored like any other character), never a decoding error.
- A review longer than the training run's ``max_tokens`` (recorded in the checkpoint) keeps its
  last ``max_tokens`` tokens, as in training; with ``max_tokens`` null the whole review is scored.

Input is read as a stream, in pieces of at most READ_SIZE bytes, and scored in chunks of at most
CHUNK_REVIEWS reviews or CHUNK_BYTES bytes; each chunk's JSON lines are printed as soon as it is
scored. Memory stays bounded however long the input runs, and Ctrl-C is seen between reads.
One review (one line, without its '\n') may have at most MAX_REVIEW_BYTES bytes: a longer line
(or an endless one, such as /dev/zero) is refused with its line number.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from textrnn import tokenizer
from textrnn.data.vectors import EncodedSplit
from textrnn.encoding import encode_texts
from textrnn.errors import UserError
from textrnn.inference import predict_logits
from textrnn.io import read_fault
from textrnn.model import RNN, load_checkpoint, predicted_labels, probabilities
from textrnn.params import COUNT_MAX, PARALLEL_MAX
from textrnn.vocab import Vocab

DEFAULT_MODEL = Path("models/model.pt")
DEFAULT_VOCAB = Path("data/vocab.txt")
DEFAULT_BATCH_SIZE = 64
CPU = torch.device("cpu")
READ_SIZE = 1 << 16
# 1 MiB: some 200k tokens, far beyond any real review; it bounds memory and the time between Ctrl-C checks.
MAX_REVIEW_BYTES = 1 << 20
# A chunk's results are printed together: big enough for length bucketing, small enough to stream.
CHUNK_REVIEWS = 1024
CHUNK_BYTES = 1 << 20


def encode_reviews(texts: Sequence[str], vocab: Vocab) -> EncodedSplit:
    """``texts`` as token ids, exactly as the vectorize stage encodes them (labels are placeholders)."""
    ids, offsets = encode_texts(texts, vocab, workers=1)
    return EncodedSplit(ids, offsets, np.zeros(len(texts), dtype=np.int64), [])


@dataclass
class Predictor:
    """A trained model with the vocabulary and the settings it was trained with."""

    model: RNN
    vocab: Vocab
    label_names: list[str]
    max_tokens: int | None


def predict_texts(
    predictor: Predictor,
    texts: Sequence[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: torch.device = CPU,
    first_index: int = 0,
    top: int | None = None,
) -> list[dict[str, object]]:
    """One ``{"index", "label", "probabilities"}`` dict per text, in order; independent of batching
    (to float32 rounding: the last bits may differ with how reviews share a batch).

    Indexes count from ``first_index``. With ``top``, ``"top": [{"label", "probability"}, ...]``
    (see ``top_classes``) takes the place of ``"probabilities"``.
    """
    logits = predict_logits(
        predictor.model, encode_reviews(texts, predictor.vocab), batch_size, device, predictor.max_tokens
    )
    labels = predicted_labels(logits)
    names = predictor.label_names
    if top is not None:
        classes, probs = top_classes(probabilities(logits).numpy(), labels.numpy(), top)
        return [
            {
                "index": first_index + i,
                "label": names[label],
                "top": [{"label": names[c], "probability": p} for c, p in zip(row, row_probs, strict=True)],
            }
            for i, (label, row, row_probs) in enumerate(zip(labels.tolist(), classes, probs, strict=True))
        ]
    probs = probabilities(logits).tolist()
    return [
        {"index": first_index + i, "label": names[label], "probabilities": dict(zip(names, p, strict=True))}
        for i, (label, p) in enumerate(zip(labels.tolist(), probs, strict=True))
    ]


def top_classes(probs: np.ndarray, labels: np.ndarray, top: int) -> tuple[list[list[int]], list[list[float]]]:
    """The ``min(top, k)`` most probable classes of each row of ``probs`` [n, k] and their
    probabilities: the predicted label first (so that it always leads, even where float32 rounding
    ties its probability with another's), then by descending probability, ties in label order."""
    n, k = probs.shape
    order = np.argsort(-probs, axis=1, kind="stable")
    others = order[order != labels[:, None]].reshape(n, k - 1)
    classes = np.concatenate([labels[:, None], others], axis=1)[:, : min(top, k)]
    return classes.tolist(), np.take_along_axis(probs, classes, axis=1).tolist()


def score_chunks(
    predictor: Predictor,
    chunks: Iterable[Sequence[str]],
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: torch.device = CPU,
    top: int | None = None,
) -> Iterator[list[dict[str, object]]]:
    """``predict_texts`` of each chunk as it comes, indexed across all chunks."""
    scored = 0
    for texts in chunks:
        yield predict_texts(predictor, texts, batch_size, device, first_index=scored, top=top)
        scored += len(texts)


def load_predictor(model_path: Path, vocab_path: Path) -> Predictor:
    """The checkpoint's model, with the vocabulary it was trained with (checked by content, not by size)."""
    checkpoint = load_checkpoint(model_path)
    vocab = Vocab.load(vocab_path)
    if vocab.fingerprint() != checkpoint.inputs["vocab_sha256"]:
        raise UserError(
            f"{vocab_path} is not the vocabulary {model_path} was trained with ({len(vocab)} tokens, "
            f"the model's has {checkpoint.model.config.vocabulary_size}); pass that one with --vocab, "
            f"or retrain with `dvc repro train`"
        )
    if checkpoint.inputs["tokenizer"] != tokenizer.fingerprint():
        raise UserError(
            f"{model_path} was trained on tokens cut by other tokenizer rules than this textrnn's "
            f"(textrnn/tokenizer.py changed); retrain with `dvc repro train`"
        )
    return Predictor(checkpoint.model, vocab, checkpoint.label_names, checkpoint.inputs["max_tokens"])


def _decode(line: bytes) -> str:
    text = line.decode("utf-8", errors="replace")
    return text[:-1] if text.endswith("\r") else text


def _too_long(source: str, line_number: int, limit: int) -> UserError:
    return UserError(
        f"{source}: line {line_number} is longer than {limit} bytes, the most one review may have; "
        f"give one review per line"
    )


def read_reviews(
    stream: BinaryIO,
    source: str,
    chunk_reviews: int = CHUNK_REVIEWS,
    chunk_bytes: int = CHUNK_BYTES,
    max_review_bytes: int = MAX_REVIEW_BYTES,
) -> Iterator[list[str]]:
    """The lines of ``stream`` as reviews (see ``split_lines``), in lists of at most ``chunk_reviews``.

    A list ends once it holds ``chunk_bytes`` bytes, and early when the stream has nothing more ready
    (a slow pipe, a terminal), so answers come as lines arrive. Memory holds one list and at most
    ``max_review_bytes`` + READ_SIZE bytes of an unfinished line; a longer line is a UserError.
    """
    read = getattr(stream, "read1", stream.read)  # read1: what is there, up to READ_SIZE, in one call
    pending = bytearray()  # the bytes after the last line break
    chunk: list[str] = []
    size = lines = 0
    while True:
        try:
            data = read(READ_SIZE)
        except OSError as error:
            raise UserError(f"{source}: cannot read it ({error.strerror or error})") from None
        if not data:
            break
        start, searched = 0, len(pending)
        pending += data
        while (end := pending.find(b"\n", searched)) >= 0:
            lines += 1
            if end - start > max_review_bytes:
                raise _too_long(source, lines, max_review_bytes)
            chunk.append(_decode(pending[start:end]))
            size += end - start + 1
            start = searched = end + 1
            if len(chunk) >= chunk_reviews or size >= chunk_bytes:
                yield chunk
                chunk, size = [], 0
        del pending[:start]
        if len(pending) > max_review_bytes:
            raise _too_long(source, lines + 1, max_review_bytes)
        if chunk and len(data) < READ_SIZE:
            yield chunk
            chunk, size = [], 0
    if pending:
        chunk.append(_decode(pending))  # the last line has no line break
    if chunk:
        yield chunk


def split_lines(data: bytes) -> list[str]:
    """One review per line of ``data`` (UTF-8, invalid bytes -> U+FFFD); blank lines are reviews too.

    Only '\\n' ends a line; a '\\r' before it is dropped; a last line without '\\n' is a review.
    """
    stream = io.BytesIO(data)
    return [text for chunk in read_reviews(stream, "data", max_review_bytes=len(data)) for text in chunk]


def _from_argv(text: str) -> str:
    # Python decodes invalid UTF-8 in argv to lone surrogates; give them the same U+FFFD as files get.
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def input_chunks(texts: Sequence[str], file: str | None, stdin=None) -> Iterator[list[str]]:
    """The reviews to score, chunk by chunk: the TEXT arguments, or the lines of ``file`` (``-`` = stdin).

    With neither, stdin is read when it is not a terminal (a pipe or a redirect).
    """
    stdin = sys.stdin if stdin is None else stdin  # sys.stdin is None when fd 0 is closed (`<&-`)
    if texts and file is not None:
        raise UserError("give reviews as TEXT arguments or with --file, not both")
    if texts:
        reviews = [_from_argv(text) for text in texts]
        for start in range(0, len(reviews), CHUNK_REVIEWS):
            yield reviews[start : start + CHUNK_REVIEWS]
        return
    if file is None:
        if stdin is not None and stdin.isatty():
            raise UserError("nothing to score: give TEXT arguments, --file PATH, or --file - to read stdin")
        file = "-"
    if file == "-":
        if stdin is None:
            raise UserError("stdin is closed; give reviews as TEXT arguments or with --file PATH")
        yield from read_reviews(stdin.buffer, "stdin")
        return
    path = Path(file)
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed by the `with` below, after the open errors)
    except FileNotFoundError:
        raise UserError(f"{path}: input file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder; --file takes a text file with one review per line") from None
    except OSError as error:
        raise read_fault(path, error) from None
    with stream:
        yield from read_reviews(stream, str(path))


def read_inputs(texts: Sequence[str], file: str | None, stdin=None) -> list[str]:
    """All the reviews of ``input_chunks``, in one list."""
    return [text for chunk in input_chunks(texts, file, stdin) for text in chunk]


def _whole_number(value: str, minimum: int, maximum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if not minimum <= number <= maximum:
        raise argparse.ArgumentTypeError(f"must be a whole number in [{minimum}, {maximum}], got {value!r}")
    return number


def _positive_int(value: str) -> int:
    return _whole_number(value, 1, COUNT_MAX)  # as the params' counts (evaluate.batch_size)


def _threads(value: str) -> int:
    return _whole_number(value, 0, PARALLEL_MAX)  # as train.threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="reviews to score, one per argument")
    parser.add_argument(
        "--file",
        metavar="PATH",
        help="read one review per line from PATH ('-' = stdin, read as a stream to its end); "
        "without TEXT or --file, stdin is read when it is a pipe or a redirect",
    )
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, metavar="PATH", help="checkpoint (default: %(default)s)"
    )
    parser.add_argument(
        "--vocab",
        type=Path,
        default=DEFAULT_VOCAB,
        metavar="PATH",
        help="vocabulary the model was trained with (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help="reviews scored together, grouped by length; results do not depend on it (default: %(default)s)",
    )
    parser.add_argument(
        "--top",
        type=_positive_int,
        metavar="K",
        help='print the K most probable classes of each text, most probable first, as "top": '
        '[{"label": NAME, "probability": p}, ...] in place of "probabilities"; a K above the '
        "model's number of classes lists them all",
    )
    parser.add_argument(
        "--threads",
        type=_threads,
        default=1,
        metavar="N",
        help="CPU threads for torch; 0 = torch's default (default: %(default)s: one "
        "step of this small RNN is too small to split, and extra threads only wait)",
    )


DESCRIPTION = """\
Print one JSON object per review on stdout, in input order:
{"index": i, "label": NAME, "probabilities": {NAME: p, ...}} with the checkpoint's label names;
with --top K, "top": [{"label": NAME, "probability": p}, ...] (the K most probable) in its place.
Input bytes are decoded as UTF-8 with invalid bytes replaced by U+FFFD; blank lines are reviews.
An empty or whitespace-only review has no tokens, so the hidden state stays zero and the
answer is V's bias; a review of unknown words only is scored as that many <unk> tokens.
Reviews longer than the training run's max_tokens keep their last max_tokens tokens.
Input is read as a stream and answers are printed as they are scored, in chunks of at most
1024 reviews; a line (one review) may have at most 1 MiB (1048576 bytes)."""


def _json_line(result: dict[str, object], model_path: Path) -> str:
    try:
        return json.dumps(result, allow_nan=False) + "\n"  # NaN and Infinity are not JSON
    except ValueError:
        raise UserError(
            f"{model_path} gave review {result['index']} a non-finite score (its weights overflow); "
            f"retrain with `dvc repro -f train`"
        ) from None


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader (`| head`) left early: stop quietly, as the Python docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as error:
        # What stdout still buffers would fail again at exit, as a second message: let it go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise UserError(f"cannot write the predictions to stdout: {error.strerror or error}") from None


def run(args: argparse.Namespace) -> None:
    """The ``predict`` command: read, score and print JSON lines, chunk by chunk."""
    if sys.stdout is None:
        raise UserError("stdout is closed; the predictions have nowhere to go")
    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = load_predictor(args.model, args.vocab)
    chunks = input_chunks(args.texts, args.file)
    for results in score_chunks(predictor, chunks, args.batch_size, top=args.top):
        _write("".join(_json_line(result, args.model) for result in results))
