"""Score texts with a trained checkpoint: one JSON object per text, in input order.

Inputs: TEXT arguments; or a file or stdin of lines (one text per line), or of records: JSON lines,
CSV (TSV) or parquet (``--format``, by default from the suffix), whose ``--text-column`` holds the
text. A record's other fields follow its answer as ``"fields": {...}``, under their own names and
apart from the answer's keys (a labelled file's ``label`` stays beside the predicted one), with
values made JSON (``jsonable``). Answers go to stdout or, with ``--output``, to a file written whole
or not at all (``atomic_path``).

Defined answers for odd inputs:

- An empty or whitespace-only text (a blank line, an empty CSV cell, a null) has no tokens: the RNN's
  state stays at its initial value (zeros), so its logits are V's bias. Its answer is marked
  ``"empty": true`` and the command counts them in one warning line at the end. A text of unknown
  words only is a run of ``<unk>`` ids and gets the model's answer for that run.
- Bytes from ``--file`` or stdin are decoded as UTF-8 with ``errors="replace"``: an invalid
  byte becomes U+FFFD (scored like any other character), never a decoding error.
- A text longer than the training run's ``max_tokens`` (recorded in the checkpoint) keeps its
  last ``max_tokens`` tokens, as in training; with ``max_tokens`` null the whole text is scored.

Input is read as a stream, in pieces of at most READ_SIZE bytes, and scored in chunks of at most
CHUNK_REVIEWS texts or CHUNK_BYTES bytes; each chunk's JSON lines are printed as soon as it is
scored. Memory stays bounded however long the input runs, and Ctrl-C is seen between reads.
One line (a text, or a JSON record, without its '\n') may have at most MAX_REVIEW_BYTES bytes: a
longer line (or an endless one, such as /dev/zero) is refused with its line number. CSV is read in
blocks of ``files.BLOCK_BYTES`` and parquet in batches of CHUNK_REVIEWS rows.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import logging
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import numpy as np
import torch

from textrnn.core.errors import UserError
from textrnn.core.filesystem import atomic_path, read_fault
from textrnn.core.params import COUNT_MAX, PARALLEL_MAX
from textrnn.data.vectors import EncodedSplit
from textrnn.model import RNN, load_checkpoint, predicted_labels, probabilities
from textrnn.scoring.inference import predict_logits
from textrnn.text import tokenizer
from textrnn.text.encoding import encode_texts
from textrnn.text.vocab import Vocab

if TYPE_CHECKING:  # pyarrow and the readers of files are imported when a file of records is read
    import pyarrow as pa

DEFAULT_MODEL = Path("models/model.pt")
DEFAULT_VOCAB = Path("data/vocab.txt")
DEFAULT_BATCH_SIZE = 64
CPU = torch.device("cpu")
log = logging.getLogger("textrnn")
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
    (see ``top_classes``) takes the place of ``"probabilities"``. An empty or whitespace-only text's
    dict ends with ``"empty": true`` (see ``is_empty``).
    """
    logits = predict_logits(
        predictor.model, encode_reviews(texts, predictor.vocab), batch_size, device, predictor.max_tokens
    )
    labels = predicted_labels(logits)
    names = predictor.label_names
    if top is not None:
        classes, probs = top_classes(probabilities(logits).numpy(), labels.numpy(), top)
        results = [
            {
                "index": first_index + i,
                "label": names[label],
                "top": [{"label": names[c], "probability": p} for c, p in zip(row, row_probs, strict=True)],
            }
            for i, (label, row, row_probs) in enumerate(zip(labels.tolist(), classes, probs, strict=True))
        ]
    else:
        probs = probabilities(logits).tolist()
        results = [
            {"index": first_index + i, "label": names[label], "probabilities": dict(zip(names, p, strict=True))}
            for i, (label, p) in enumerate(zip(labels.tolist(), probs, strict=True))
        ]
    for result, text in zip(results, texts, strict=True):
        if is_empty(text):
            result["empty"] = True
    return results


def is_empty(text: str) -> bool:
    """Whether ``text`` has nothing to read (empty or whitespace-only): its answer is V's bias, not a reading."""
    return not text.strip()


def top_classes(probs: np.ndarray, labels: np.ndarray, top: int) -> tuple[list[list[int]], list[list[float]]]:
    """The ``min(top, k)`` most probable classes of each row of ``probs`` [n, k] and their
    probabilities: the predicted label first (so that it always leads, even where float32 rounding
    ties its probability with another's), then by descending probability, ties in label order."""
    n, k = probs.shape
    order = np.argsort(-probs, axis=1, kind="stable")
    others = order[order != labels[:, None]].reshape(n, k - 1)
    classes = np.concatenate([labels[:, None], others], axis=1)[:, : min(top, k)]
    return classes.tolist(), np.take_along_axis(probs, classes, axis=1).tolist()


@dataclass
class Chunk:
    """Texts read from a file of records, with each one's other fields (to carry to its answer)."""

    texts: list[str]
    fields: list[dict[str, object]]


def score_chunks(
    predictor: Predictor,
    chunks: Iterable[Sequence[str] | Chunk],
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: torch.device = CPU,
    top: int | None = None,
) -> Iterator[list[dict[str, object]]]:
    """``predict_texts`` of each chunk as it comes, indexed across all chunks; a ``Chunk``'s fields
    follow each answer as ``"fields": {...}``, last."""
    scored = 0
    for chunk in chunks:
        texts = chunk.texts if isinstance(chunk, Chunk) else chunk
        results = predict_texts(predictor, texts, batch_size, device, first_index=scored, top=top)
        if isinstance(chunk, Chunk):
            for result, fields in zip(results, chunk.fields, strict=True):
                result["fields"] = fields
        yield results
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
            f"(textrnn/text/tokenizer.py changed); retrain with `dvc repro train`"
        )
    return Predictor(checkpoint.model, vocab, checkpoint.label_names, checkpoint.inputs["max_tokens"])


def _decode(line: bytes | bytearray) -> str:
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
    with _open_input(path) as stream:
        yield from read_reviews(stream, str(path))


def _open_input(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")  # noqa: SIM115 (the caller closes it)
    except FileNotFoundError:
        raise UserError(f"{path}: input file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder; --file takes one file (of lines, JSON lines, CSV or parquet)") from None
    except OSError as error:
        raise read_fault(path, error) from None


def read_inputs(texts: Sequence[str], file: str | None, stdin=None) -> list[str]:
    """All the reviews of ``input_chunks``, in one list."""
    return [text for chunk in input_chunks(texts, file, stdin) for text in chunk]


# --format's choices; a file's default comes from its suffix (files.FORMATS, as download reads a folder).
FORMAT_CHOICES = ("lines", "jsonl", "csv", "parquet")
_FORMAT_OF_FILES = {"JSON lines": "jsonl", "CSV": "csv", "parquet": "parquet"}
DEFAULT_TEXT_COLUMN = "text"
# An output predict will not write: it writes JSON lines, whatever the name says.
NOT_JSON_LINES = (".csv", ".tsv", ".parquet")
# What a JSON value is, in words, when it is not what was wanted.
_JSON_KIND = {
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    list: "an array",
    dict: "an object",
}


def input_format(file: str | None, given: str | None) -> str:
    """``given``, else the format ``file``'s suffix names (``.jsonl``/``.ndjson``/``.json``, ``.csv``/``.tsv``,
    ``.parquet``), else lines (stdin too)."""
    if given is not None:
        return given
    if file is None or file == "-":
        return "lines"
    from textrnn.data import files

    return _FORMAT_OF_FILES.get(files.FORMATS.get(Path(file).suffix.lower(), ""), "lines")


def jsonable(value: object) -> object:
    """A carried value as JSON can hold it: dates and times as ISO 8601 strings, bytes decoded as UTF-8
    (invalid bytes -> U+FFFD, as input text), NaN and infinities as null, any other object (a decimal, a
    duration) as its ``str``; lists and objects element by element."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (datetime.date, datetime.time)):  # a datetime is a date
        return value.isoformat()
    return str(value)


def _record(line: str, source: str, number: int, text_column: str) -> tuple[str, dict[str, object]]:
    """One JSON line's text (null -> "") and its other fields."""
    try:
        record = json.loads(line)
    except ValueError as error:
        reason = getattr(error, "msg", None) or str(error)
        raise UserError(f"{source}: line {number} is not JSON ({reason}); give one JSON object per line") from None
    if not isinstance(record, dict):
        raise UserError(
            f"{source}: line {number} is not a JSON object but {_JSON_KIND.get(type(record), 'null')}; give one "
            f'object per line ({{"{text_column}": ..., ...}}): JSON lines, not one JSON document'
        )
    if text_column not in record:
        raise UserError(
            f"{source}: line {number} has no field {text_column!r} (its fields: {list(record)}); name the text "
            f"field with --text-column"
        )
    text = record.pop(text_column)
    if text is not None and not isinstance(text, str):
        raise UserError(
            f"{source}: line {number}: field {text_column!r} is {_JSON_KIND[type(text)]}, not a string; name the "
            f"text field with --text-column, or give the text as a JSON string"
        )
    return text or "", cast(dict[str, object], jsonable(record))  # a dict stays a dict


def read_json_lines(stream: BinaryIO, source: str, text_column: str, **limits: int) -> Iterator[Chunk]:
    """The records of a JSON lines stream, read as ``read_reviews`` reads lines (in bounded chunks,
    one line at most ``max_review_bytes``); blank lines are no records."""
    number = 0
    for lines in read_reviews(stream, source, **limits):
        texts, fields = [], []
        for line in lines:
            number += 1
            if line.strip():
                text, other = _record(line, source, number, text_column)
                texts.append(text)
                fields.append(other)
        if texts:
            yield Chunk(texts, fields)


def _check_columns(path: Path, text_column: str, columns: list[str]) -> None:
    if text_column not in columns:
        raise UserError(
            f"{path}: no column {text_column!r} (columns: {columns}); name the text column with --text-column"
        )
    twice = sorted({name for name in columns if columns.count(name) > 1})
    if twice:  # pyarrow would read one of them for both, and the carried fields keep one name once
        raise UserError(f"{path}: columns {twice} appear more than once; give each column its own name")


def _is_text(column_type: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(column_type):
        column_type = column_type.value_type
    return (
        pa.types.is_string(column_type)
        or pa.types.is_large_string(column_type)
        or getattr(pa.types, "is_string_view", lambda _: False)(column_type)
        or pa.types.is_null(column_type)
    )


def _batch_chunks(batches: Iterable[pa.RecordBatch], text_column: str) -> Iterator[Chunk]:
    """Record batches as chunks of at most CHUNK_REVIEWS texts (a missing text -> ""), the other columns carried."""
    for batch in batches:
        others = [name for name in batch.schema.names if name != text_column]
        for start in range(0, len(batch), CHUNK_REVIEWS):
            part = batch.slice(start, CHUNK_REVIEWS)
            texts = [text or "" for text in part.column(text_column).to_pylist()]
            columns = [[jsonable(value) for value in part.column(name).to_pylist()] for name in others]
            rows = zip(*columns, strict=True) if others else ([] for _ in texts)
            yield Chunk(texts, [dict(zip(others, row, strict=True)) for row in rows])


def read_csv(path: Path, text_column: str) -> Iterator[Chunk]:
    """A CSV (TSV) file's records, every column read as text, an empty cell missing (``files.read_csv_as_text``)."""
    _check_file(path)
    from textrnn.data import files

    columns, batches = files.read_csv_as_text(path)
    _check_columns(path, text_column, columns)
    yield from _batch_chunks(batches, text_column)


def read_parquet(path: Path, text_column: str) -> Iterator[Chunk]:
    """A parquet file's records, read in batches of CHUNK_REVIEWS rows (``files.DataFile``)."""
    _check_file(path)
    from textrnn.data import files

    handle = files.open_parquet(path)
    data = files.DataFile(path, "parquet", handle.schema_arrow, handle.metadata.num_rows)
    _check_columns(path, text_column, data.column_names)
    column_type = data.schema.field(text_column).type
    if not _is_text(column_type):
        raise UserError(
            f"{path}: column {text_column!r} holds {column_type}, not text; name the text column with --text-column "
            f"(columns: {data.column_names})"
        )
    yield from _batch_chunks(data.batches(data.column_names, CHUNK_REVIEWS), text_column)


def _check_file(path: Path) -> None:
    """The faults `_open_input` names, for the readers that open a file through pyarrow."""
    _open_input(path).close()


def read_chunks(
    texts: Sequence[str],
    file: str | None,
    format: str | None = None,
    text_column: str | None = None,
    stdin=None,
) -> Iterator[list[str] | Chunk]:
    """The texts to score, chunk by chunk, in ``format`` (``input_format``): lines as ``input_chunks``
    reads them (lists of texts), records of JSON lines, CSV or parquet as ``Chunk``s. ``text_column``: None
    when not given (``DEFAULT_TEXT_COLUMN``), so that one given to input read as lines is refused even if it is
    the default's name."""
    if texts and format not in (None, "lines"):
        raise UserError(f"--format {format} reads --file PATH or stdin; TEXT arguments are texts themselves")
    chosen = input_format(file, format)
    if chosen == "lines" and text_column is not None:
        raise UserError(
            f"--text-column names a field of JSON lines, CSV or parquet, but {file or 'the input'} is read as "
            f"lines (one text per line); give --format jsonl, csv or parquet, or leave --text-column out"
        )
    if chosen == "lines":
        yield from input_chunks(texts, file, stdin)
        return
    if text_column is None:
        text_column = DEFAULT_TEXT_COLUMN
    stdin = sys.stdin if stdin is None else stdin
    reading_stdin = file is None or file == "-"
    if reading_stdin and chosen in ("csv", "parquet"):
        raise UserError(f"--format {chosen} reads a file, not stdin; give --file PATH")
    if reading_stdin:
        if stdin is None:
            raise UserError("stdin is closed; give reviews as TEXT arguments or with --file PATH")
        if file is None and stdin.isatty():
            raise UserError("nothing to score: give --file PATH, or --file - to read stdin")
        yield from read_json_lines(stdin.buffer, "stdin", text_column)
        return
    assert file is not None  # not reading stdin
    path = Path(file)
    if chosen == "jsonl":
        with _open_input(path) as stream:
            yield from read_json_lines(stream, str(path), text_column)
    elif chosen == "csv":
        yield from read_csv(path, text_column)
    else:
        yield from read_parquet(path, text_column)


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
        help="read the texts from PATH ('-' = stdin, read as a stream to its end); "
        "without TEXT or --file, stdin is read when it is a pipe or a redirect",
    )
    parser.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        help="lines: one text per line; jsonl: one JSON object per line; csv: a header line, then rows "
        "(tab-separated when the file ends in .tsv); parquet. Default: from the suffix (.jsonl/.ndjson/.json, "
        ".csv/.tsv, .parquet), else lines (stdin: lines); csv and parquet read a file, not stdin",
    )
    parser.add_argument(
        "--text-column",
        metavar="NAME",
        help=f"the field (jsonl) or column (csv, parquet) holding the text (default: {DEFAULT_TEXT_COLUMN}); the "
        'others are carried to each answer as "fields"',
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="write the JSON lines to PATH (whole or not at all: written beside it, renamed when complete) "
        "instead of stdout",
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
Print one JSON object per text on stdout (or --output PATH), in input order:
{"index": i, "label": NAME, "probabilities": {NAME: p, ...}} with the checkpoint's label names;
with --top K, "top": [{"label": NAME, "probability": p}, ...] (the K most probable) in its place.
Texts come as TEXT arguments, or from --file PATH / stdin: one per line (blank lines are texts), or
records of JSON lines, CSV or parquet (--format, default from the suffix) whose --text-column holds
the text; a record's other fields follow its answer as "fields": {NAME: value, ...}.
An empty or whitespace-only text (or a null one) has no tokens: its answer is V's bias, marked
"empty": true, and one warning line on stderr counts them at the end.
Input bytes are decoded as UTF-8 with invalid bytes replaced by U+FFFD; a text of unknown words
only is scored as that many <unk> tokens; texts longer than the training run's max_tokens keep
their last max_tokens tokens. Input is read as a stream and answers are printed as they are
scored, in chunks of at most 1024 texts; a line may have at most 1 MiB (1048576 bytes)."""


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


def _answer(
    predictor: Predictor, chunks: Iterable[Sequence[str] | Chunk], args: argparse.Namespace, write
) -> tuple[int, int]:
    """Score ``chunks``, ``write`` each chunk's JSON lines; (texts scored, empty texts among them)."""
    texts = empty = 0
    for results in score_chunks(predictor, chunks, args.batch_size, top=args.top):
        write("".join(_json_line(result, args.model) for result in results))
        texts += len(results)
        empty += sum(1 for result in results if result.get("empty"))
    return texts, empty


def _check_output(output: Path) -> None:
    if output.suffix.lower() in NOT_JSON_LINES:
        raise UserError(
            f"--output {output}: predict writes JSON lines, not {output.suffix.lower()[1:]}; name the output "
            f".jsonl (or read the JSON lines with your tools: pandas.read_json(path, lines=True))"
        )


def run(args: argparse.Namespace) -> None:
    """The ``predict`` command: read, score and print JSON lines, chunk by chunk."""
    if args.output is not None:
        _check_output(args.output)
    elif sys.stdout is None:
        raise UserError("stdout is closed; the predictions have nowhere to go")
    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = load_predictor(args.model, args.vocab)
    chunks = read_chunks(args.texts, args.file, args.format, args.text_column)
    if args.output is None:
        texts, empty = _answer(predictor, chunks, args, _write)
    else:
        with atomic_path(args.output) as tmp, open(tmp, "w", encoding="utf-8") as output:
            texts, empty = _answer(predictor, chunks, args, output.write)
    if empty:
        log.warning(
            'predict: %d of %d texts are empty or whitespace-only (marked "empty": true); their answer is the '
            "model's bias, not a reading of any text",
            empty,
            texts,
        )
