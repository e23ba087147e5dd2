"""The predict command: scoring is batch-invariant, odd inputs get defined answers, errors are one line."""

from __future__ import annotations

import datetime
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, run, synthetic_reviews

import textrnn.scoring.predict
from textrnn.core.errors import UserError
from textrnn.data.vectors import EncodedSplit
from textrnn.model import CHECKPOINT_FORMAT, RNN, ModelConfig, probabilities, save_checkpoint
from textrnn.scoring.predict import Predictor, load_predictor, predict_texts, read_inputs, split_lines
from textrnn.text import tokenizer
from textrnn.text.encoding import count_tokens, encode_texts
from textrnn.text.vocab import UNK_ID, Vocab
from textrnn.training.loop import TrainConfig, train_model

LABELS = ["neg", "pos"]
CPU = torch.device("cpu")
SHORT = "A great film!"
LONG = [" ".join(["the movie was boring and the plot was dull ."] * n) for n in (20, 35, 50, 80)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as the CLI uses: tiny RNN steps only get slower split across busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(one_thread):
    """A small binary model trained for a few epochs on synthetic reviews, and its vocabulary."""
    frame = synthetic_reviews(200, seed=3)
    vocab = Vocab.build(count_tokens(frame["text"]), min_freq=1)
    ids, offsets = encode_texts(frame["text"].tolist(), vocab)
    split = EncodedSplit(ids, offsets, frame["label"].to_numpy(np.int64), LABELS)
    torch.manual_seed(0)
    model = RNN(ModelConfig(len(vocab), 8, 16))
    result = train_model(model, split, split, TrainConfig(lr=0.01, batch_size=16, epochs=4, seed=0), CPU)
    model.load_state_dict(result.best_state)
    model.eval()
    return model, vocab


@pytest.fixture(scope="module")
def project(trained, tmp_path_factory) -> Path:
    """A folder holding the model and vocabulary at the pipeline's default paths."""
    model, vocab = trained
    directory = tmp_path_factory.mktemp("predict")
    save_checkpoint(directory / "models/model.pt", model, model.state_dict(), LABELS, {}, inputs_of(vocab))
    vocab.save(directory / "data/vocab.txt")
    return directory


def inputs_of(vocab: Vocab, max_tokens=None) -> dict:
    """The inputs record the train stage saves: this vocabulary's content and this tokenizer."""
    return {"vocab_sha256": vocab.fingerprint(), "tokenizer": tokenizer.fingerprint(), "max_tokens": max_tokens}


def scored(model: RNN, vocab: Vocab, label_names: list, texts: list, max_tokens=None, **options) -> list:
    """``predict_texts`` with a predictor made of these parts."""
    return predict_texts(Predictor(model, vocab, label_names, max_tokens), texts, **options)


def reference(model: RNN, vocab: Vocab, text: str) -> list:
    """Probabilities from the step-by-step loop on this review alone."""
    from textrnn.text.tokenizer import tokenize

    ids = torch.tensor([vocab.encode(tokenize(text))], dtype=torch.int64).reshape(1, -1)
    with torch.inference_mode():
        logits = model.forward_loop(ids, torch.tensor([ids.shape[1]]))
    return probabilities(logits)[0].tolist()


def probs(result: dict) -> list:
    return list(result["probabilities"].values())


def test_results_follow_input_order_and_name_the_labels(trained):
    model, vocab = trained
    texts = ["wonderful superb brilliant film", "awful boring terrible waste", SHORT, "the plot"]
    results = scored(model, vocab, LABELS, texts)
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["label"] for r in results[:2]] == ["pos", "neg"]  # the model learned the synthetic words
    for result, text in zip(results, texts, strict=True):
        assert list(result["probabilities"]) == LABELS
        assert sum(probs(result)) == pytest.approx(1.0, abs=1e-6)
        assert result["label"] == LABELS[int(np.argmax(probs(result)))]
        assert probs(result) == pytest.approx(reference(model, vocab, text), abs=1e-5)


def test_short_review_scores_the_same_alone_among_long_ones_and_reversed(trained):
    model, vocab = trained
    alone = scored(model, vocab, LABELS, [SHORT])[0]
    mixed = scored(model, vocab, LABELS, LONG + [SHORT], batch_size=64)  # one padded batch
    reversed_ = scored(model, vocab, LABELS, [SHORT] + LONG[::-1], batch_size=3)
    one_by_one = scored(model, vocab, LABELS, LONG + [SHORT], batch_size=1)
    for result in (mixed[-1], reversed_[0], one_by_one[-1]):
        assert result["label"] == alone["label"]
        assert probs(result) == pytest.approx(probs(alone), abs=1e-6)
    for i in range(len(LONG)):
        assert probs(mixed[i]) == pytest.approx(probs(reversed_[len(LONG) - i]), abs=1e-6)
        assert probs(mixed[i]) == pytest.approx(probs(one_by_one[i]), abs=1e-6)


def test_empty_and_whitespace_reviews_get_the_bias_answer(trained):
    model, vocab = trained
    results = scored(model, vocab, LABELS, ["", "   ", "\t \r", SHORT])
    positive = torch.sigmoid(model.V.bias.detach()).item()  # zero hidden state: logits = V's bias
    for result in results[:3]:
        assert probs(result) == pytest.approx([1 - positive, positive], abs=1e-6)
        assert result["label"] == ("pos" if positive > 0.5 else "neg")


def test_unknown_words_score_as_that_many_unk_tokens(trained):
    model, vocab = trained
    result = scored(model, vocab, LABELS, ["zzqx qqzx xxqz"])[0]
    with torch.inference_mode():
        expected = probabilities(model.forward_loop(torch.full((1, 3), UNK_ID), torch.tensor([3])))[0]
    assert probs(result) == pytest.approx(expected.tolist(), abs=1e-5)


def test_max_tokens_keeps_the_last_tokens(trained):
    model, vocab = trained
    words = ["great", "wonderful", "the", "film", "awful", "boring", "terrible", "dull", "waste", "bad"]
    full, tail = scored(model, vocab, LABELS, [" ".join(words), " ".join(words[-5:])], max_tokens=5)
    assert probs(full) == pytest.approx(probs(tail), abs=1e-6)
    uncapped = scored(model, vocab, LABELS, [" ".join(words)])[0]
    assert probs(uncapped) != pytest.approx(probs(tail), abs=1e-6)


def test_more_than_two_classes_give_one_probability_per_label(trained):
    _, vocab = trained
    torch.manual_seed(1)
    model = RNN(ModelConfig(len(vocab), 8, 16, num_classes=3)).eval()
    names = ["sad", "meh", "glad"]
    results = scored(model, vocab, names, [SHORT, "", "awful film"])
    with torch.inference_mode():
        empty = torch.softmax(model.V.bias, dim=0).tolist()
    assert probs(results[1]) == pytest.approx(empty, abs=1e-6)
    for result in results:
        assert list(result["probabilities"]) == names
        assert sum(probs(result)) == pytest.approx(1.0, abs=1e-6)
        assert result["label"] == names[int(np.argmax(probs(result)))]


def test_top_classes_lead_with_the_label_then_descend_with_ties_in_label_order():
    probs = np.array([[0.1, 0.4, 0.1, 0.4], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.15, 0.05]], dtype=np.float32)
    labels = np.array([3, 0, 0])  # row 0: the label ties class 1 (float32 rounding of unequal logits)
    classes, chosen = textrnn.scoring.predict.top_classes(probs, labels, 3)
    assert classes == [[3, 1, 0], [0, 1, 2], [0, 2, 1]]
    assert chosen == [[probs[0, 3], probs[0, 1], probs[0, 0]], [0.25] * 3, [probs[2, 0], probs[2, 2], probs[2, 1]]]
    assert textrnn.scoring.predict.top_classes(probs, labels, 9)[0] == [
        [3, 1, 0, 2],
        [0, 1, 2, 3],
        [0, 2, 1, 3],
    ]  # clamped


def test_top_k_gives_the_k_most_probable_classes_of_the_full_answer(trained):
    _, vocab = trained
    torch.manual_seed(1)
    model = RNN(ModelConfig(len(vocab), 8, 16, num_classes=5)).eval()
    names = ["a", "b", "c", "d", "e"]
    texts = [SHORT, "", "awful film", LONG[0]]
    full = scored(model, vocab, names, texts)
    for k in (1, 3, 5, 7):
        results = scored(model, vocab, names, texts, top=k)
        for result, whole, text in zip(results, full, texts, strict=True):
            keys = ["index", "label", "top", *(["empty"] if text == "" else [])]
            assert list(result) == keys and result["label"] == whole["label"]
            ranked = sorted(whole["probabilities"].items(), key=lambda item: -item[1])  # stable: label order on ties
            ranked.sort(key=lambda item: item[0] != whole["label"])  # the label leads
            assert result["top"] == [{"label": name, "probability": p} for name, p in ranked[: min(k, 5)]]


def test_split_lines_decodes_invalid_utf8_and_keeps_blank_lines():
    assert split_lines(b"") == []
    assert split_lines(b"one\n") == ["one"]
    assert split_lines(b"one\r\n\ntwo") == ["one", "", "two"]
    assert split_lines(b"\xff\xfe ok\n\x00\x80") == ["\ufffd\ufffd ok", "\x00\ufffd"]
    assert split_lines(b"a\x0cb\x1cc\n") == ["a\x0cb\x1cc"]  # only '\n' ends a review


class FakeStdin:
    def __init__(self, data: bytes, tty: bool):
        self.buffer = io.BytesIO(data)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_read_inputs_sources(tmp_path):
    assert read_inputs(["a", "b"], None, FakeStdin(b"x\n", False)) == ["a", "b"]
    assert read_inputs([], None, FakeStdin(b"x\ny\n", False)) == ["x", "y"]
    assert read_inputs([], "-", FakeStdin(b"x\n", True)) == ["x"]
    (tmp_path / "in.txt").write_bytes(b"p\n\nq\n")
    assert read_inputs([], str(tmp_path / "in.txt"), FakeStdin(b"", True)) == ["p", "", "q"]
    # Python turns invalid UTF-8 in argv into lone surrogates; they become U+FFFD as in files.
    assert read_inputs(["bad \udcff byte"], None, FakeStdin(b"", True)) == ["bad \ufffd byte"]
    with pytest.raises(UserError, match="nothing to score"):
        read_inputs([], None, FakeStdin(b"", True))
    with pytest.raises(UserError, match="not both"):
        read_inputs(["a"], "-", FakeStdin(b"", False))
    with pytest.raises(UserError, match="input file not found"):
        read_inputs([], str(tmp_path / "missing.txt"), FakeStdin(b"", True))


def test_load_predictor_rejects_a_vocabulary_of_another_size(project, tmp_path):
    Vocab(["<unk>", "<pad>", "only"]).save(tmp_path / "vocab.txt")
    with pytest.raises(
        UserError,
        match=r"vocab.txt is not the vocabulary .*model.pt was trained with \(3 tokens, "
        r"the model's has \d+\)",
    ):
        load_predictor(project / "models/model.pt", tmp_path / "vocab.txt")


def same_size_other_tokens(vocab: Vocab) -> Vocab:
    """The same tokens with two of them swapped: as many ids, each token read as another's id."""
    tokens = list(vocab.itos)
    tokens[2], tokens[3] = tokens[3], tokens[2]
    return Vocab(tokens)


def test_load_predictor_rejects_a_vocabulary_of_the_same_size_by_content(project, trained, tmp_path):
    _, vocab = trained
    same_size_other_tokens(vocab).save(tmp_path / "vocab.txt")
    model_path = project / "models/model.pt"
    with pytest.raises(UserError) as error:
        load_predictor(model_path, tmp_path / "vocab.txt")
    assert str(error.value) == (
        f"{tmp_path / 'vocab.txt'} is not the vocabulary {model_path} was trained with ({len(vocab)} tokens, the "
        f"model's has {len(vocab)}); pass that one with --vocab, or retrain with `dvc repro train`"
    )
    assert load_predictor(model_path, project / "data/vocab.txt").vocab.itos == vocab.itos  # the right one loads


def test_load_predictor_rejects_a_model_trained_with_other_tokenizer_rules(trained, tmp_path):
    model, vocab = trained
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, model.state_dict(), LABELS, {}, {**inputs_of(vocab), "tokenizer": "0" * 16})
    vocab.save(tmp_path / "vocab.txt")
    with pytest.raises(
        UserError,
        match=r"model.pt was trained on tokens cut by other tokenizer rules than this "
        r"textrnn's \(textrnn/text/tokenizer.py changed\); retrain",
    ):
        load_predictor(path, tmp_path / "vocab.txt")


# ---------------------------------------------------------------- the command line


def cli(args, cwd: Path, stdin=None, command=("predict",)):
    """`python -m textrnn predict ...` in ``cwd`` with this checkout's package importable."""
    return run(
        ["python", "-m", "textrnn", *command, *args], cwd, check=False, stdin=stdin, env={"PYTHONPATH": str(ROOT)}
    )


def json_lines(stdout: str) -> list:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.slow
def test_help_lists_the_predict_command(project):
    result = cli(["--help"], project, command=())
    assert result.returncode == 0
    assert "predict   score texts with a trained model; prints one JSON line per text" in result.stdout


@pytest.mark.slow
def test_cli_prints_one_json_line_per_text_in_order(project, trained):
    model, vocab = trained
    texts = ["wonderful superb film", "awful boring waste", SHORT]
    result = cli(texts, project)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # stdout is pure JSON; nothing else is said on success
    lines = json_lines(result.stdout)
    assert [set(line) for line in lines] == [{"index", "label", "probabilities"}] * 3
    assert [line["index"] for line in lines] == [0, 1, 2]
    assert [line["label"] for line in lines[:2]] == ["pos", "neg"]
    expected = scored(model, vocab, LABELS, texts)
    for line, want in zip(lines, expected, strict=True):
        assert line["label"] == want["label"]
        assert probs(line) == pytest.approx(probs(want), abs=1e-6)


@pytest.mark.slow
def test_cli_top_prints_the_k_most_probable_classes_and_clamps_k(project, trained):
    model, vocab = trained
    texts = ["wonderful superb film", "awful boring waste"]
    result = cli(["--top", "5", *texts], project)  # 5 > the model's 2 classes: both are listed
    assert result.returncode == 0 and result.stderr == "", result.stderr
    expected = scored(model, vocab, LABELS, texts, top=2)
    lines = json_lines(result.stdout)
    assert [(line["index"], line["label"], [t["label"] for t in line["top"]]) for line in lines] == [
        (0, "pos", ["pos", "neg"]),
        (1, "neg", ["neg", "pos"]),
    ]
    for line, want in zip(lines, expected, strict=True):
        assert [t["probability"] for t in line["top"]] == pytest.approx(
            [t["probability"] for t in want["top"]], abs=1e-6
        )
    refused = cli(["--top", "0", SHORT], project)
    assert (
        refused.returncode == 2
        and "argument --top: must be a whole number in [1, 2147483647], got '0'" in refused.stderr
    )


@pytest.mark.slow
def test_cli_file_and_stdin_handle_blank_unknown_invalid_and_100k_token_reviews(project, trained, tmp_path):
    model, vocab = trained
    rng = np.random.default_rng(0)
    garbage = bytes(rng.integers(0, 256, 3000, dtype=np.uint8)).replace(b"\n", b"")
    huge = " ".join(rng.choice(["great", "dull", "the", "film", "plot"], 100_000))
    data = (
        b"\n".join(
            [
                SHORT.encode(),
                b"",
                b"   ",
                b"zzqx qqzx",
                b"\xff\xfe great \x80 film",
                garbage,
                huge.encode(),
                b"awful film\r",
            ]
        )
        + b"\n"
    )
    (tmp_path / "reviews.txt").write_bytes(data)
    texts = split_lines(data)
    assert len(texts) == 8 and len(texts[6].split()) == 100_000
    expected = scored(model, vocab, LABELS, texts)

    outputs = [cli(["--file", str(tmp_path / "reviews.txt")], project)]
    for args in (["--file", "-"], []):  # stdin named, and stdin as a pipe
        with open(tmp_path / "reviews.txt", "rb") as stdin:
            outputs.append(cli(args, project, stdin=stdin))
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        lines = json_lines(result.stdout)
        assert [line["index"] for line in lines] == list(range(8))
        for line, want in zip(lines, expected, strict=True):
            assert line["label"] == want["label"]
            assert probs(line) == pytest.approx(probs(want), abs=1e-6)
    assert outputs[0].stdout == outputs[1].stdout == outputs[2].stdout
    lines = json_lines(outputs[0].stdout)
    assert probs(lines[1]) == probs(lines[2])  # empty and whitespace-only: both V's bias


def mismatched_vocab(directory: Path) -> list:
    Vocab(["<unk>", "<pad>", "only"]).save(directory / "small_vocab.txt")
    return ["--vocab", "small_vocab.txt"]


def same_size_vocab(directory: Path) -> list:
    same_size_other_tokens(Vocab.load(directory / "data/vocab.txt")).save(directory / "swapped_vocab.txt")
    return ["--vocab", "swapped_vocab.txt"]


def corrupt_checkpoint(directory: Path) -> list:
    (directory / "corrupt.pt").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    return ["--model", "corrupt.pt"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "make_args, message",
    [
        (
            mismatched_vocab,
            r"^error: small_vocab\.txt is not the vocabulary models/model\.pt was trained with "
            r"\(3 tokens, the model's has \d+\); pass that one with --vocab, or retrain",
        ),
        (
            same_size_vocab,
            r"^error: swapped_vocab\.txt is not the vocabulary models/model\.pt was trained with "
            r"\((\d+) tokens, the model's has \1\); pass that one with --vocab, or retrain",
        ),
        (lambda d: ["--model", "missing.pt"], r"missing\.pt: checkpoint not found"),
        (lambda d: ["--vocab", "missing.txt"], r"missing\.txt: vocabulary not found"),
        (corrupt_checkpoint, r"corrupt\.pt: corrupt or truncated checkpoint"),
        (lambda d: ["--file", "missing.txt"], r"missing\.txt: input file not found"),
        (
            lambda d: ["--file", "models"],
            r"^error: models: is a folder; --file takes one file \(of lines, JSON lines, CSV or parquet\)$",
        ),
    ],
    ids=[
        "mismatched-vocab",
        "same-size-vocab",
        "missing-model",
        "missing-vocab",
        "corrupt-checkpoint",
        "missing-input",
        "input-folder",
    ],
)
def test_cli_errors_are_one_line(project, make_args, message):
    args = make_args(project)
    result = cli(args if "--file" in args else [*args, SHORT], project)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]


# ---------------------------------------------------------------- streaming: bounded memory, interruptible

MAX_REVIEW_BYTES = 1 << 20  # the documented limit on one review (one line)
MEMORY_LIMIT = 1 << 30  # RSS a streaming predict must stay under (it starts at about 200 MB with torch)
INTERRUPTED = "stopped before finishing; the previous outputs are intact and no temporary file is left"


def decoded_then_split(data: bytes) -> list:
    """The reviews of ``data`` by the rule predict has always had: decode it all, then split at '\\n'."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines] if data else []


class Trickle(io.RawIOBase):
    """A stream whose reads return a few bytes at a time, at random, as a pipe may."""

    def __init__(self, data: bytes, seed: int):
        self.data, self.position, self.rng = data, 0, np.random.default_rng(seed)

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        n = min(size, int(self.rng.integers(1, 40)))
        chunk = self.data[self.position : self.position + n]
        self.position += len(chunk)
        return chunk


@pytest.mark.parametrize("seed", range(20))
def test_reading_in_pieces_gives_the_reviews_of_reading_at_once(seed):
    rng = np.random.default_rng(seed)
    alphabet = [b"a", b" ", b"\n", b"\r", b"\r\n", b"\xff", b"\xe2\x82", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\x00"]
    data = b"".join(rng.choice(alphabet, int(rng.integers(0, 400))))
    expected = decoded_then_split(data)
    assert split_lines(data) == expected
    chunks = list(textrnn.scoring.predict.read_reviews(Trickle(data, seed), "test", chunk_reviews=3, chunk_bytes=10))
    assert [review for chunk in chunks for review in chunk] == expected
    assert all(chunk for chunk in chunks)
    assert all(len(chunk) <= 3 for chunk in chunks)


def test_chunks_are_bounded_in_reviews_and_bytes():
    data = b"".join(f"review {i} ".encode() * (i % 7) + b"\n" for i in range(5000))
    chunks = list(textrnn.scoring.predict.read_reviews(io.BytesIO(data), "test", chunk_reviews=100, chunk_bytes=2000))
    assert [review for chunk in chunks for review in chunk] == decoded_then_split(data)
    for chunk in chunks:
        assert len(chunk) <= 100
        assert sum(len(review.encode()) + 1 for review in chunk[:-1]) < 2000  # the last one may cross the line


def test_scoring_chunk_by_chunk_gives_the_results_of_scoring_everything_at_once(trained):
    model, vocab = trained
    rng = np.random.default_rng(5)
    words = ["great", "dull", "the", "film", "plot", "zzqx", ""]
    texts = [" ".join(rng.choice(words, int(rng.integers(0, 60)))) for _ in range(300)]
    data = "\n".join(texts).encode() + b"\n"
    chunks = textrnn.scoring.predict.read_reviews(io.BytesIO(data), "test", chunk_reviews=7, chunk_bytes=300)
    streamed = [
        result
        for results in textrnn.scoring.predict.score_chunks(Predictor(model, vocab, LABELS, None), chunks, batch_size=5)
        for result in results
    ]
    at_once = scored(model, vocab, LABELS, texts, batch_size=64)
    assert [(r["index"], r["label"]) for r in streamed] == [(r["index"], r["label"]) for r in at_once]
    for result, want in zip(
        streamed, at_once, strict=True
    ):  # as batch-invariant as batching ever was: to float32 rounding
        assert probs(result) == pytest.approx(probs(want), abs=1e-6)


@pytest.mark.parametrize("line_break", [b"\n", b"\r\n"])
def test_a_review_longer_than_the_limit_is_refused_with_its_line_number(line_break):
    longest = b"x" * (MAX_REVIEW_BYTES - len(line_break) + 1)
    fits = b"a" + line_break + longest + line_break
    assert read_inputs([], "-", FakeStdin(fits, False)) == ["a", "x" * len(longest)]
    too_long = fits + b"b" * (MAX_REVIEW_BYTES + 1) + line_break + b"c\n"
    with pytest.raises(UserError) as error:
        read_inputs([], "-", FakeStdin(too_long, False))
    assert str(error.value) == (
        f"stdin: line 3 is longer than {MAX_REVIEW_BYTES} bytes, the most one review may have; give one review per line"
    )
    with pytest.raises(UserError, match=r"^stdin: line 1 is longer than "):  # no line break at all
        read_inputs([], "-", FakeStdin(b"z" * (MAX_REVIEW_BYTES + 1), False))


def start_predict(args, cwd: Path, stdin, stdout) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "textrnn", "predict", *args],
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) * 1024 if match else 0


def watch(process: subprocess.Popen, until, timeout: float) -> None:
    """Wait for ``until()`` while ``process`` runs; fail if its memory passes MEMORY_LIMIT or time runs out."""
    deadline = time.monotonic() + timeout
    while not until():
        memory = rss(process.pid)
        if memory > MEMORY_LIMIT:
            process.kill()
            pytest.fail(f"predict grew to {memory >> 20} MiB: its memory is not bounded")
        if process.poll() is not None:
            pytest.fail(f"predict ended ({process.returncode}): {process.stderr.read().decode()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"nothing after {timeout} s")
        time.sleep(0.05)


def complete_lines(path: Path) -> list:
    text = path.read_bytes().decode()
    return text.split("\n")[:-1]  # the last piece is empty or a line still being written


needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory use from /proc")


@pytest.mark.slow
@needs_proc
@pytest.mark.parametrize("signum, code, by", [(signal.SIGINT, 130, ""), (signal.SIGTERM, 143, " by SIGTERM")])
def test_an_endless_input_streams_results_in_bounded_memory_and_stops_on_a_signal(
    project, trained, tmp_path, signum, code, by
):
    model, vocab = trained
    expected = scored(model, vocab, LABELS, ["great film"])[0]
    out = tmp_path / "out.jsonl"
    yes = subprocess.Popen(["yes", "great film"], stdout=subprocess.PIPE)
    try:
        with open(out, "wb") as stdout:
            predict = start_predict([], project, yes.stdout, stdout)
        yes.stdout.close()  # predict holds the only reading end: when it exits, `yes` gets SIGPIPE
        watch(predict, lambda: len(complete_lines(out)) >= 5000, timeout=120)
        predict.send_signal(signum)
        predict.wait(timeout=10)
    finally:
        for process in (yes, predict):
            process.kill()
            process.wait()
    assert predict.returncode == code
    assert predict.stderr.read().decode().splitlines() == [f"interrupted{by}: {INTERRUPTED}"]
    lines = complete_lines(out)
    assert len(lines) >= 5000
    for i, line in enumerate(lines):
        assert json.loads(line) == {**expected, "index": i}


@pytest.mark.slow
@needs_proc
@pytest.mark.parametrize("source", ["--file", "stdin"])
def test_an_endless_line_is_refused_in_bounded_memory(project, source):
    with open("/dev/zero", "rb") as zeros:
        if source == "--file":
            predict = start_predict(["--file", "/dev/zero"], project, subprocess.DEVNULL, subprocess.PIPE)
        else:
            predict = start_predict([], project, zeros, subprocess.PIPE)
    try:
        watch(predict, lambda: predict.poll() is not None, timeout=60)
    finally:
        predict.kill()
        predict.wait()
    name = "/dev/zero" if source == "--file" else "stdin"
    assert predict.returncode == 1
    assert predict.stdout.read() == b""
    assert predict.stderr.read().decode().splitlines() == [
        f"error: {name}: line 1 is longer than {MAX_REVIEW_BYTES} bytes, the most one review may have; "
        f"give one review per line"
    ]


@pytest.mark.slow
@needs_proc
@pytest.mark.parametrize("signum, code, by", [(signal.SIGINT, 130, ""), (signal.SIGTERM, 143, " by SIGTERM")])
def test_results_come_as_lines_arrive_and_a_signal_stops_a_waiting_read(project, tmp_path, signum, code, by):
    out = tmp_path / "out.jsonl"
    with open(out, "wb") as stdout:
        predict = start_predict([], project, subprocess.PIPE, stdout)
    try:
        predict.stdin.write(b"great film\nawful film\n")
        predict.stdin.flush()  # and keep stdin open: predict waits in a read for more
        watch(predict, lambda: len(complete_lines(out)) == 2, timeout=60)
        time.sleep(0.5)
        predict.send_signal(signum)
        predict.wait(timeout=10)
    finally:
        predict.kill()
        predict.wait()
        predict.stdin.close()
    assert predict.returncode == code
    assert predict.stderr.read().decode().splitlines() == [f"interrupted{by}: {INTERRUPTED}"]
    assert [json.loads(line)["index"] for line in complete_lines(out)] == [0, 1]


def shell(command: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``command`` under bash, with ``predict`` meaning `python -m textrnn predict` from this checkout."""
    return subprocess.run(
        ["bash", "-c", f'predict() {{ {sys.executable} -m textrnn predict "$@"; }}; {command}'],
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


@pytest.mark.slow
def test_a_broken_pipe_stays_quiet_even_on_an_endless_input(project):
    # `ulimit -v` keeps a predict that would read without end from taking the machine's memory.
    result = shell('yes "great film" | (ulimit -v 3000000; predict) | head -1; echo "${PIPESTATUS[1]}" >&2', project)
    assert json.loads(result.stdout)["index"] == 0
    assert result.stderr.decode() == "1\n"  # predict's exit status, and nothing else on stderr


@pytest.mark.slow
def test_a_full_disk_on_stdout_is_one_line(project):
    result = shell("predict 'great film' 'awful film' > /dev/full", project)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "error: cannot write the predictions to stdout: No space left on device"
    ]


@pytest.mark.slow
def test_a_closed_stdout_is_one_line(project):
    result = shell("predict 'great film' >&-", project)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == ["error: stdout is closed; the predictions have nowhere to go"]


@pytest.mark.slow
@pytest.mark.parametrize("args", ["", "--file -"])
def test_a_closed_stdin_is_one_line(project, args):
    result = shell(f"predict {args} <&-", project)
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode().splitlines() == [
        "error: stdin is closed; give reviews as TEXT arguments or with --file PATH"
    ]


@pytest.mark.slow
def test_an_input_that_fails_to_read_is_one_line(project):
    # /proc/self/mem opens, then fails to read at offset 0. (A folder as stdin, `< /`, never reaches
    # predict: Python itself stops at startup with "Fatal Python error: init_sys_streams".)
    result = shell("predict --file /proc/self/mem", project)
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode().splitlines() == ["error: /proc/self/mem: cannot read it (Input/output error)"]


# ---------------------------------------------------------------- never invalid JSON


def strict_json(line: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def save_raw_checkpoint(path: Path, model: RNN, state_dict: dict, label_names: list, vocab: Vocab) -> None:
    """What save_checkpoint writes, without its refusal of non-finite weights."""
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "config": asdict(model.config),
            "label_names": label_names,
            "inputs": inputs_of(vocab),
            "metadata": {},
            "state_dict": state_dict,
        },
        path,
    )


@pytest.mark.slow
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_checkpoint_with_non_finite_weights_is_refused_at_load(project, trained, tmp_path, value):
    model, vocab = trained
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    state["V.weight"][0, 3] = value
    save_raw_checkpoint(tmp_path / "bad.pt", model, state, LABELS, vocab)
    result = cli(["--model", str(tmp_path / "bad.pt"), SHORT], project)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'bad.pt'}: weights V.weight are not finite (NaN or inf); retrain with `dvc repro -f train`"
    ]


@pytest.mark.slow
def test_scores_that_overflow_are_refused_and_never_printed_as_nan(project, trained, tmp_path):
    _, vocab = trained
    torch.manual_seed(1)
    model = RNN(ModelConfig(len(vocab), 8, 16, num_classes=3)).eval()
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    state["V.weight"][0] = 3e38  # finite, but the logit of class 0 overflows to inf and softmax gives NaN
    state["V.bias"][0] = 3e38
    state["W.bias"][:] = 50.0  # every hidden unit near +1 once a token is read
    save_raw_checkpoint(tmp_path / "huge.pt", model, state, ["a", "b", "c"], vocab)
    result = cli(["--model", str(tmp_path / "huge.pt"), SHORT], project)
    for line in result.stdout.splitlines():
        strict_json(line)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'huge.pt'} gave review 0 a non-finite score (its weights overflow); "
        f"retrain with `dvc repro -f train`"
    ]


# ---------------------------------------------------------------- files of records: JSON lines, CSV, parquet


def predict_args(project: Path, *args: str):
    """``textrnn predict ARGS`` parsed as the command parses them, with the project's model and vocabulary."""
    from textrnn.cli import build_parser

    return build_parser().parse_args(
        ["predict", "--model", str(project / "models/model.pt"), "--vocab", str(project / "data/vocab.txt"), *args]
    )


def predict_out(project: Path, *args: str, capsys=None) -> list:
    """The lines ``textrnn predict ARGS`` prints, run in this process."""
    parsed = predict_args(project, *args)
    parsed.run(parsed)
    return capsys.readouterr().out.splitlines()


def expected_lines(trained, texts: list, fields: list | None) -> list:
    """The JSON lines of ``texts`` scored in one chunk, each answer followed by its carried fields."""
    model, vocab = trained
    results = scored(model, vocab, LABELS, texts)
    if fields is not None:
        results = [{**result, "fields": carried} for result, carried in zip(results, fields, strict=True)]
    return [json.dumps(result) for result in results]


RECORD_TEXTS = ["wonderful superb film", "awful boring\nwaste of time", "", SHORT]


def test_json_lines_are_scored_as_records_with_their_fields_carried_after_the_answer(
    project, trained, tmp_path, capsys
):
    path = tmp_path / "test.jsonl"
    path.write_text(
        '{"id": 1, "text": "wonderful superb film", "label": "pos"}\n'
        '{"text": "awful boring\\nwaste of time", "label": "neg", "meta": {"source": "a", "scores": [1, 2.5]}}\n'
        "\n"  # a blank line is no record
        '{"id": 3, "text": null, "label": "neg"}\r\n'
        '{"text": "A great film!"}\n'
    )
    fields = [{"id": 1, "label": "pos"}, {"label": "neg", "meta": {"source": "a", "scores": [1, 2.5]}}]
    fields += [{"id": 3, "label": "neg"}, {}]
    lines = predict_out(project, "--file", str(path), capsys=capsys)
    assert lines == expected_lines(trained, RECORD_TEXTS, fields)
    # The prediction's "label" and the record's own stay apart: a labelled test file can be compared.
    assert json.loads(lines[0])["fields"]["label"] == "pos" and set(json.loads(lines[0])) == {
        "index",
        "label",
        "probabilities",
        "fields",
    }
    assert json.loads(lines[2])["empty"] is True  # null: no text
    data = path.read_bytes()[:-1]  # stdin reads JSON lines with --format jsonl; the last line may lack its break
    chunks = list(textrnn.scoring.predict.read_chunks([], "-", "jsonl", stdin=FakeStdin(data, False)))
    assert [text for chunk in chunks for text in chunk.texts] == RECORD_TEXTS


def test_csv_and_tsv_records_read_every_column_as_text_and_keep_newlines_in_quoted_cells(
    project, trained, tmp_path, capsys
):
    (tmp_path / "test.csv").write_text(
        'id,label,review\n007,pos,wonderful superb film\n8,neg,"awful boring\nwaste of time"\n9,,\n'
        "10,pos,A great film!\n"
    )
    fields = [{"id": "007", "label": "pos"}, {"id": "8", "label": "neg"}, {"id": "9", "label": None}]
    fields += [{"id": "10", "label": "pos"}]
    want = expected_lines(trained, RECORD_TEXTS, fields)
    assert predict_out(project, "--file", str(tmp_path / "test.csv"), "--text-column", "review", capsys=capsys) == want
    (tmp_path / "test.tsv").write_text(
        'id\tlabel\treview\n007\tpos\twonderful superb film\n8\tneg\t"awful boring\nwaste of time"\n9\t\t\n'
        "10\tpos\tA great film!\n"
    )
    assert predict_out(project, "--file", str(tmp_path / "test.tsv"), "--text-column", "review", capsys=capsys) == want


def test_parquet_records_carry_dates_bytes_and_decimals_as_strings(project, trained, tmp_path, capsys):
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "day": pa.array([datetime.date(2024, 2, 29), None, datetime.date(2000, 1, 1), datetime.date(1999, 12, 31)]),
            "text": RECORD_TEXTS[:2] + [None, SHORT],
            "raw": pa.array([b"ok", b"\xff", b"", None], pa.binary()),
            "price": pa.array([decimal.Decimal("1.50"), None, None, None], pa.decimal128(5, 2)),
            "score": [float("nan"), 1.5, float("inf"), 2.0],
            "at": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5)] * 4, pa.timestamp("s")),
        }
    )
    pq.write_table(table, tmp_path / "test.parquet", row_group_size=3)
    at = "2024-01-02T03:04:05"
    fields = [
        {"day": "2024-02-29", "raw": "ok", "price": "1.50", "score": None, "at": at},
        {"day": None, "raw": "\ufffd", "price": None, "score": 1.5, "at": at},
        {"day": "2000-01-01", "raw": "", "price": None, "score": None, "at": at},
        {"day": "1999-12-31", "raw": None, "price": None, "score": 2.0, "at": at},
    ]
    lines = predict_out(project, "--file", str(tmp_path / "test.parquet"), capsys=capsys)
    # Two row groups, two batches: the scores are those of one chunk to float32 rounding; the fields exact.
    model, vocab = trained
    want = scored(model, vocab, LABELS, RECORD_TEXTS)
    got = [json.loads(line) for line in lines]
    assert [line["fields"] for line in got] == fields
    assert [(line["index"], line["label"], line.get("empty")) for line in got] == [
        (w["index"], w["label"], w.get("empty")) for w in want
    ]
    for line, w in zip(got, want, strict=True):
        assert probs(line) == pytest.approx(probs(w), abs=1e-6)


def test_every_format_gives_the_scores_of_the_same_texts_as_lines(project, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = synthetic_reviews(40, seed=8)["text"].tolist() + ["", "zzqx qqzx", 'caf\u00e9 \u00ab quoted \u00bb, "x"']
    (tmp_path / "texts.txt").write_text("".join(f"{text}\n" for text in texts))
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    pq.write_table(pa.table({"text": texts}), tmp_path / "texts.parquet")
    with open(tmp_path / "texts.csv", "w", newline="") as stream:
        import csv

        writer = csv.writer(stream)
        writer.writerow(["text"])
        writer.writerows([text] for text in texts)
    plain = predict_out(project, "--file", str(tmp_path / "texts.txt"), capsys=capsys)
    assert all(set(json.loads(line)) <= {"index", "label", "probabilities", "empty"} for line in plain)
    for suffix in ("jsonl", "csv", "parquet"):
        lines = predict_out(project, "--file", str(tmp_path / f"texts.{suffix}"), capsys=capsys)
        assert [line.replace(', "fields": {}}', "}") for line in lines] == plain, suffix  # the very same bytes


def test_the_format_comes_from_the_suffix_unless_given():
    from textrnn.scoring.predict import input_format

    assert [input_format(f"a.{suffix}", None) for suffix in ("jsonl", "NDJSON", "json", "csv", "tsv", "parquet")] == [
        "jsonl",
        "jsonl",
        "jsonl",
        "csv",
        "csv",
        "parquet",
    ]
    assert [input_format(name, None) for name in ("a.txt", "reviews", None, "-")] == ["lines"] * 4
    assert input_format("a.csv", "lines") == "lines" and input_format(None, "jsonl") == "jsonl"


def test_empty_texts_are_marked_and_counted_in_one_warning(project, trained, tmp_path, capsys, caplog):
    (tmp_path / "in.txt").write_text(f"{SHORT}\n\n  \t\nawful film\n")
    with caplog.at_level("WARNING", logger="textrnn"):
        lines = predict_out(project, "--file", str(tmp_path / "in.txt"), capsys=capsys)
    assert lines == expected_lines(trained, [SHORT, "", "  \t", "awful film"], None)
    assert [json.loads(line).get("empty") for line in lines] == [None, True, True, None]
    # A non-empty text's line is the same bytes as ever: no "empty" key.
    assert list(json.loads(lines[0])) == ["index", "label", "probabilities"]
    assert caplog.messages == [
        'predict: 2 of 4 texts are empty or whitespace-only (marked "empty": true); their answer is the '
        "model's bias, not a reading of any text"
    ]
    caplog.clear()
    predict_out(project, SHORT, capsys=capsys)
    assert caplog.messages == []  # nothing said when every text has words


def test_output_is_written_whole_or_not_at_all(project, tmp_path, capsys, monkeypatch):
    source = tmp_path / "in.jsonl"
    good = [json.dumps({"text": f"film {i}", "id": i}) for i in range(1100)]  # more than one chunk (1024)
    source.write_text("\n".join(good) + "\n")
    printed = predict_out(project, "--file", str(source), capsys=capsys)
    output = tmp_path / "out" / "predictions.jsonl"
    assert predict_out(project, "--file", str(source), "--output", str(output), capsys=capsys) == []
    assert output.read_text().splitlines() == printed
    assert sorted(p.name for p in output.parent.iterdir()) == ["predictions.jsonl"]  # no temporary left
    # A fault after the first chunk was written: the previous output stays whole, no temporary is left.
    source.write_text("\n".join([*good, "[1, 2]"]) + "\n")
    with pytest.raises(UserError, match="line 1101 is not a JSON object"):
        predict_out(project, "--file", str(source), "--output", str(output), capsys=capsys)
    assert output.read_text().splitlines() == printed
    assert sorted(p.name for p in output.parent.iterdir()) == ["predictions.jsonl"]
    # Ctrl-C while the second chunk is scored: the same.
    source.write_text("\n".join(good) + "\n")
    real, calls = textrnn.scoring.predict.predict_texts, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(textrnn.scoring.predict, "predict_texts", interrupted)
    with pytest.raises(KeyboardInterrupt):
        predict_out(project, "--file", str(source), "--output", str(output), capsys=capsys)
    assert len(calls) == 2
    assert output.read_text().splitlines() == printed
    assert sorted(p.name for p in output.parent.iterdir()) == ["predictions.jsonl"]


def test_records_are_read_in_bounded_chunks(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from textrnn.scoring.predict import CHUNK_REVIEWS, read_chunks

    texts = [f"film {i}" for i in range(2500)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": t, "i": i}) + "\n" for i, t in enumerate(texts)))
    (tmp_path / "a.csv").write_text("text,i\n" + "".join(f"{t},{i}\n" for i, t in enumerate(texts)))
    pq.write_table(pa.table({"text": texts, "i": range(2500)}), tmp_path / "a.parquet", row_group_size=2000)
    for suffix, carried in (("jsonl", lambda i: i), ("csv", str), ("parquet", lambda i: i)):
        chunks = list(read_chunks([], str(tmp_path / f"a.{suffix}")))
        assert all(0 < len(chunk.texts) <= CHUNK_REVIEWS for chunk in chunks), suffix
        assert [t for chunk in chunks for t in chunk.texts] == texts
        assert [f for chunk in chunks for f in chunk.fields] == [{"i": carried(i)} for i in range(2500)]


def write_parquet(path: Path, columns: dict) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize(
    "make, args, message",
    [
        (
            lambda d: (d / "a.csv").write_text("id,review\n1,good\n"),
            ["--file", "{d}/a.csv"],
            "{d}/a.csv: no column 'text' (columns: ['id', 'review']); name the text column with --text-column",
        ),
        (
            lambda d: write_parquet(d / "a.parquet", {"id": [1], "review": ["good"]}),
            ["--file", "{d}/a.parquet"],
            "{d}/a.parquet: no column 'text' (columns: ['id', 'review']); name the text column with --text-column",
        ),
        (
            lambda d: write_parquet(d / "a.parquet", {"text": [1], "review": ["good"]}),
            ["--file", "{d}/a.parquet"],
            "{d}/a.parquet: column 'text' holds int64, not text; name the text column with --text-column "
            "(columns: ['text', 'review'])",
        ),
        (
            lambda d: (d / "a.jsonl").write_text('{"text": "good"}\n{"review": "bad", "id": 2}\n'),
            ["--file", "{d}/a.jsonl"],
            "{d}/a.jsonl: line 2 has no field 'text' (its fields: ['review', 'id']); name the text field with "
            "--text-column",
        ),
        (
            lambda d: (d / "a.jsonl").write_text('{"text": "good"}\n\n["bad"]\n'),
            ["--file", "{d}/a.jsonl"],
            '{d}/a.jsonl: line 3 is not a JSON object but an array; give one object per line ({{"text": ..., ...}}): '
            "JSON lines, not one JSON document",
        ),
        (
            lambda d: (d / "a.json").write_text('{"text": "good",\n'),
            ["--file", "{d}/a.json"],
            "{d}/a.json: line 1 is not JSON (Expecting property name enclosed in double quotes); give one JSON "
            "object per line",
        ),
        (
            lambda d: (d / "a.jsonl").write_text('{"text": 5}\n'),
            ["--file", "{d}/a.jsonl"],
            "{d}/a.jsonl: line 1: field 'text' is a number, not a string; name the text field with --text-column, "
            "or give the text as a JSON string",
        ),
        (
            lambda d: (d / "a.csv").write_text("text\ngood\na,b\n"),
            ["--file", "{d}/a.csv"],
            "{d}/a.csv: not readable as CSV (CSV parse error: Expected 1 columns, got 2: a,b); fix or replace the file",
        ),
        (
            lambda d: (d / "a.csv").write_text("text,id,id\ngood,1,2\n"),
            ["--file", "{d}/a.csv"],
            "{d}/a.csv: columns ['id'] appear more than once; give each column its own name",
        ),
        (
            lambda d: (d / "a.txt").write_text("good\n"),
            ["--file", "{d}/a.txt", "--text-column", "review"],
            "--text-column names a field of JSON lines, CSV or parquet, but {d}/a.txt is read as lines (one text "
            "per line); give --format jsonl, csv or parquet, or leave --text-column out",
        ),
        (  # the default's name, given: still a field of records, which lines have not
            lambda d: (d / "a.txt").write_text("good\n"),
            ["--file", "{d}/a.txt", "--text-column", "text"],
            "--text-column names a field of JSON lines, CSV or parquet, but {d}/a.txt is read as lines (one text "
            "per line); give --format jsonl, csv or parquet, or leave --text-column out",
        ),
        (lambda d: None, ["--file", "{d}/a.parquet"], "{d}/a.parquet: input file not found"),
        (
            lambda d: (d / "folder.csv").mkdir(),
            ["--file", "{d}/folder.csv"],
            "{d}/folder.csv: is a folder; --file takes one file (of lines, JSON lines, CSV or parquet)",
        ),
        (
            lambda d: None,
            ["--format", "csv", "--file", "-"],
            "--format csv reads a file, not stdin; give --file PATH",
        ),
        (
            lambda d: None,
            ["--format", "jsonl", "good"],
            "--format jsonl reads --file PATH or stdin; TEXT arguments are texts themselves",
        ),
        (
            lambda d: None,
            ["--output", "{d}/out.csv", "good"],
            "--output {d}/out.csv: predict writes JSON lines, not csv; name the output .jsonl (or read the JSON "
            "lines with your tools: pandas.read_json(path, lines=True))",
        ),
    ],
    ids=[
        "csv-no-text-column",
        "parquet-no-text-column",
        "parquet-text-not-text",
        "jsonl-no-text-field",
        "jsonl-not-an-object",
        "jsonl-not-json",
        "jsonl-text-not-a-string",
        "csv-unreadable-content",
        "csv-duplicate-columns",
        "text-column-of-lines",
        "default-text-column-of-lines",
        "missing-file",
        "folder",
        "csv-from-stdin",
        "format-with-text-arguments",
        "csv-output",
    ],
)
def test_a_bad_record_file_is_refused_in_one_line(project, tmp_path, capsys, make, args, message):
    make(tmp_path)
    output = tmp_path / "out.jsonl"
    with pytest.raises(UserError) as error:
        args = [arg.format(d=tmp_path) for arg in args]
        predict_out(project, *args, *([] if "--output" in args else ["--output", str(output)]), capsys=capsys)
    assert str(error.value) == message.format(d=tmp_path)
    assert not output.exists() and not list(tmp_path.glob(".out.jsonl.*"))


def test_an_unknown_format_is_refused_by_the_argument_parser(project, capsys):
    with pytest.raises(SystemExit) as exit_:
        predict_args(project, "--format", "xml", "good")
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "textrnn predict: error: argument --format: invalid choice: 'xml' (choose from 'lines', 'jsonl', 'csv', "
        "'parquet')"
    )


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_an_unreadable_record_file_is_one_line(project, tmp_path, monkeypatch, capsys, suffix):
    import errno

    path = tmp_path / f"locked.{suffix}"
    path.write_text("text\n")

    def open_(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(file))

    monkeypatch.setattr(textrnn.scoring.predict, "open", open_, raising=False)
    with pytest.raises(UserError) as error:
        predict_out(project, "--file", str(path), capsys=capsys)
    assert str(error.value) == (
        f"cannot read {path}: permission denied; make it readable (chmod/chown) or run as a user who may read it"
    )


@pytest.mark.slow
def test_cli_scores_a_csv_file_into_an_output_and_warns_about_empty_texts_on_stderr(project, trained, tmp_path):
    (tmp_path / "test.csv").write_text('id,text\na7,wonderful superb film\nb8,"awful boring\nwaste of time"\nc9,\n')
    result = cli(
        [
            "--model",
            str(project / "models/model.pt"),
            "--vocab",
            str(project / "data/vocab.txt"),
            "--file",
            "test.csv",
            "--output",
            "out/predictions.jsonl",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        'predict: 1 of 3 texts are empty or whitespace-only (marked "empty": true); their answer is the '
        "model's bias, not a reading of any text\n"
    )
    fields = [{"id": "a7"}, {"id": "b8"}, {"id": "c9"}]
    want = expected_lines(trained, ["wonderful superb film", "awful boring\nwaste of time", ""], fields)
    assert (tmp_path / "out/predictions.jsonl").read_text() == "".join(f"{line}\n" for line in want)
    assert os.listdir(tmp_path / "out") == ["predictions.jsonl"]
