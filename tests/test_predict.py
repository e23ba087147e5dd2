"""The predict command: scoring is batch-invariant, odd inputs get defined answers, errors are one line."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, run, synthetic_reviews
from textrnn.data import EncodedSplit
from textrnn.errors import UserError
from textrnn.model import RNN, ModelConfig, probabilities, save_checkpoint
from textrnn.predict import load_predictor, predict_texts, read_inputs, split_lines
from textrnn.preprocess import count_tokens, encode_texts
from textrnn.training import TrainConfig, train_model
from textrnn.vocab import UNK_ID, Vocab

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
    save_checkpoint(directory / "models/model.pt", model, model.state_dict(), LABELS, {})
    vocab.save(directory / "data/vocab.txt")
    return directory


def reference(model: RNN, vocab: Vocab, text: str) -> list:
    """Probabilities from the step-by-step loop on this review alone."""
    from textrnn.tokenizer import tokenize

    ids = torch.tensor([vocab.encode(tokenize(text))], dtype=torch.int64).reshape(1, -1)
    with torch.inference_mode():
        logits = model.forward_loop(ids, torch.tensor([ids.shape[1]]))
    return probabilities(logits)[0].tolist()


def probs(result: dict) -> list:
    return list(result["probabilities"].values())


def test_results_follow_input_order_and_name_the_labels(trained):
    model, vocab = trained
    texts = ["wonderful superb brilliant film", "awful boring terrible waste", SHORT, "the plot"]
    results = predict_texts(model, vocab, LABELS, texts)
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["label"] for r in results[:2]] == ["pos", "neg"]  # the model learned the synthetic words
    for result, text in zip(results, texts):
        assert list(result["probabilities"]) == LABELS
        assert sum(probs(result)) == pytest.approx(1.0, abs=1e-6)
        assert result["label"] == LABELS[int(np.argmax(probs(result)))]
        assert probs(result) == pytest.approx(reference(model, vocab, text), abs=1e-5)


def test_short_review_scores_the_same_alone_among_long_ones_and_reversed(trained):
    model, vocab = trained
    alone = predict_texts(model, vocab, LABELS, [SHORT])[0]
    mixed = predict_texts(model, vocab, LABELS, LONG + [SHORT], batch_size=64)  # one padded batch
    reversed_ = predict_texts(model, vocab, LABELS, [SHORT] + LONG[::-1], batch_size=3)
    one_by_one = predict_texts(model, vocab, LABELS, LONG + [SHORT], batch_size=1)
    for result in (mixed[-1], reversed_[0], one_by_one[-1]):
        assert result["label"] == alone["label"]
        assert probs(result) == pytest.approx(probs(alone), abs=1e-6)
    for i in range(len(LONG)):
        assert probs(mixed[i]) == pytest.approx(probs(reversed_[len(LONG) - i]), abs=1e-6)
        assert probs(mixed[i]) == pytest.approx(probs(one_by_one[i]), abs=1e-6)


def test_empty_and_whitespace_reviews_get_the_bias_answer(trained):
    model, vocab = trained
    results = predict_texts(model, vocab, LABELS, ["", "   ", "\t \r", SHORT])
    positive = torch.sigmoid(model.V.bias.detach()).item()  # zero hidden state: logits = V's bias
    for result in results[:3]:
        assert probs(result) == pytest.approx([1 - positive, positive], abs=1e-6)
        assert result["label"] == ("pos" if positive > 0.5 else "neg")


def test_unknown_words_score_as_that_many_unk_tokens(trained):
    model, vocab = trained
    result = predict_texts(model, vocab, LABELS, ["zzqx qqzx xxqz"])[0]
    with torch.inference_mode():
        expected = probabilities(model.forward_loop(torch.full((1, 3), UNK_ID), torch.tensor([3])))[0]
    assert probs(result) == pytest.approx(expected.tolist(), abs=1e-5)


def test_max_tokens_keeps_the_last_tokens(trained):
    model, vocab = trained
    words = "great wonderful the film awful boring terrible dull waste bad".split()
    full, tail = predict_texts(model, vocab, LABELS, [" ".join(words), " ".join(words[-5:])], max_tokens=5)
    assert probs(full) == pytest.approx(probs(tail), abs=1e-6)
    uncapped = predict_texts(model, vocab, LABELS, [" ".join(words)])[0]
    assert probs(uncapped) != pytest.approx(probs(tail), abs=1e-6)


def test_more_than_two_classes_give_one_probability_per_label(trained):
    _, vocab = trained
    torch.manual_seed(1)
    model = RNN(ModelConfig(len(vocab), 8, 16, num_classes=3)).eval()
    names = ["sad", "meh", "glad"]
    results = predict_texts(model, vocab, names, [SHORT, "", "awful film"])
    with torch.inference_mode():
        empty = torch.softmax(model.V.bias, dim=0).tolist()
    assert probs(results[1]) == pytest.approx(empty, abs=1e-6)
    for result in results:
        assert list(result["probabilities"]) == names
        assert sum(probs(result)) == pytest.approx(1.0, abs=1e-6)
        assert result["label"] == names[int(np.argmax(probs(result)))]


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
    with pytest.raises(UserError, match=r"vocab.txt has 3 tokens but .*model.pt was trained on \d+"):
        load_predictor(project / "models/model.pt", tmp_path / "vocab.txt")


# ---------------------------------------------------------------- the command line

def cli(args, cwd: Path, stdin=None, command=("predict",)):
    """`python -m textrnn predict ...` in ``cwd`` with this checkout's package importable."""
    return run(["python", "-m", "textrnn", *command, *args], cwd, check=False, stdin=stdin,
               env={"PYTHONPATH": str(ROOT)})


def json_lines(stdout: str) -> list:
    return [json.loads(line) for line in stdout.splitlines()]


def test_help_lists_the_predict_command(project):
    result = cli(["--help"], project, command=())
    assert result.returncode == 0
    assert "predict" in result.stdout and "score reviews" in result.stdout


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
    expected = predict_texts(model, vocab, LABELS, texts)
    for line, want in zip(lines, expected):
        assert line["label"] == want["label"]
        assert probs(line) == pytest.approx(probs(want), abs=1e-6)


def test_cli_file_and_stdin_handle_blank_unknown_invalid_and_100k_token_reviews(project, trained, tmp_path):
    model, vocab = trained
    rng = np.random.default_rng(0)
    garbage = bytes(rng.integers(0, 256, 3000, dtype=np.uint8)).replace(b"\n", b"")
    huge = " ".join(rng.choice(["great", "dull", "the", "film", "plot"], 100_000))
    data = b"\n".join([SHORT.encode(), b"", b"   ", b"zzqx qqzx", b"\xff\xfe great \x80 film", garbage,
                       huge.encode(), b"awful film\r"]) + b"\n"
    (tmp_path / "reviews.txt").write_bytes(data)
    texts = split_lines(data)
    assert len(texts) == 8 and len(texts[6].split()) == 100_000
    expected = predict_texts(model, vocab, LABELS, texts)

    outputs = [cli(["--file", str(tmp_path / "reviews.txt")], project)]
    for args in (["--file", "-"], []):  # stdin named, and stdin as a pipe
        with open(tmp_path / "reviews.txt", "rb") as stdin:
            outputs.append(cli(args, project, stdin=stdin))
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        lines = json_lines(result.stdout)
        assert [line["index"] for line in lines] == list(range(8))
        for line, want in zip(lines, expected):
            assert line["label"] == want["label"]
            assert probs(line) == pytest.approx(probs(want), abs=1e-6)
    assert outputs[0].stdout == outputs[1].stdout == outputs[2].stdout
    lines = json_lines(outputs[0].stdout)
    assert probs(lines[1]) == probs(lines[2])  # empty and whitespace-only: both V's bias


def mismatched_vocab(directory: Path) -> list:
    Vocab(["<unk>", "<pad>", "only"]).save(directory / "small_vocab.txt")
    return ["--vocab", "small_vocab.txt"]


def corrupt_checkpoint(directory: Path) -> list:
    (directory / "corrupt.pt").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    return ["--model", "corrupt.pt"]


@pytest.mark.parametrize("make_args, message", [
    (mismatched_vocab, r"small_vocab\.txt has 3 tokens but models/model\.pt was trained on \d+"),
    (lambda d: ["--model", "missing.pt"], r"missing\.pt: checkpoint not found"),
    (lambda d: ["--vocab", "missing.txt"], r"missing\.txt: vocabulary not found"),
    (corrupt_checkpoint, r"corrupt\.pt: corrupt or truncated checkpoint"),
    (lambda d: ["--file", "missing.txt"], r"missing\.txt: input file not found"),
], ids=["mismatched-vocab", "missing-model", "missing-vocab", "corrupt-checkpoint", "missing-input"])
def test_cli_errors_are_one_line(project, make_args, message):
    args = make_args(project)
    result = cli(args if "--file" in args else [*args, SHORT], project)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
