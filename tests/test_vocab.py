"""The vocabulary: torchtext's order, min_freq, max_size, specials, unknown tokens, the file on disk."""

from collections import Counter

import pytest

from textrnn.core.errors import UserError
from textrnn.text.vocab import PAD, PAD_ID, UNK, UNK_ID, Vocab


def test_specials_first_then_count_descending_ties_alphabetical():
    counts = Counter({"the": 5, "zebra": 3, "apple": 3, "movie": 3, "b": 1, "a": 1, "Z": 1})
    vocab = Vocab.build(counts)
    # Ties sort by code point, as Python sorts strings (torchtext's sort): 'Z' < 'a'.
    assert vocab.itos == [UNK, PAD, "the", "apple", "movie", "zebra", "Z", "a", "b"]
    assert (UNK_ID, PAD_ID) == (0, 1)
    assert vocab.stoi == {token: i for i, token in enumerate(vocab.itos)}


def test_torchtext_hand_computed_example():
    # build_vocab_from_iterator(iter(tokens), min_freq=2, specials=['<unk>', '<pad>'], special_first=True):
    # counts: movie 4, good 3, bad 2, plot 2, a 1, the 1 -> keep count >= 2, sort by (-count, token).
    tokens = [
        ["movie", "good", "movie", "bad"],
        ["plot", "good", "movie", "a"],
        ["movie", "good", "bad", "plot", "the"],
    ]
    counts = Counter(token for review in tokens for token in review)
    vocab = Vocab.build(counts, min_freq=2)
    assert vocab.itos == ["<unk>", "<pad>", "movie", "good", "bad", "plot"]
    assert vocab.encode(["the", "plot", "movie", "unseen"]) == [0, 5, 2, 0]


def test_min_freq_boundary():
    counts = Counter({"kept": 5, "dropped": 4, "frequent": 9})
    vocab = Vocab.build(counts, min_freq=5)
    assert vocab.itos == [UNK, PAD, "frequent", "kept"]
    assert Vocab.build(counts, min_freq=4).itos == [UNK, PAD, "frequent", "kept", "dropped"]
    assert Vocab.build(counts, min_freq=10).itos == [UNK, PAD]


def test_max_size_counts_the_specials():
    counts = Counter({"a": 4, "b": 3, "c": 2, "d": 1})
    assert Vocab.build(counts, max_size=4).itos == [UNK, PAD, "a", "b"]
    assert len(Vocab.build(counts, max_size=4)) == 4
    assert Vocab.build(counts, max_size=2).itos == [UNK, PAD]
    assert Vocab.build(counts, max_size=100).itos == [UNK, PAD, "a", "b", "c", "d"]
    # max_size and min_freq together: the cap applies to what min_freq kept.
    assert Vocab.build(counts, min_freq=3, max_size=10).itos == [UNK, PAD, "a", "b"]


def test_special_in_counts_is_not_duplicated():
    counts = Counter({"<unk>": 50, "<pad>": 2, "word": 7})
    vocab = Vocab.build(counts)
    assert vocab.itos == [UNK, PAD, "word"]
    assert vocab["<unk>"] == 0 and vocab["<pad>"] == 1


def test_unknown_tokens_map_to_zero():
    vocab = Vocab.build(Counter({"good": 3, "bad": 2}))
    assert vocab["good"] == 2
    assert vocab["bad"] == 3
    assert vocab["never-seen"] == UNK_ID == 0
    assert vocab["GOOD"] == 0  # case matters: the tokenizer lowercases, the vocabulary does not
    assert vocab.encode(["bad", "nope", "good", ""]) == [3, 0, 2, 0]
    assert vocab.encode([]) == []


def test_save_load_round_trip_is_byte_exact(tmp_path):
    vocab = Vocab.build(Counter({"the": 9, "é": 4, "don": 4, "'": 3, "10/10": 2, "<br": 1}))
    path = tmp_path / "vocab.txt"
    vocab.save(path)
    data = path.read_bytes()
    assert data == "".join(t + "\n" for t in vocab.itos).encode("utf-8")
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == ""
    assert lines[:-1] == vocab.itos  # line i is id i
    loaded = Vocab.load(path)
    assert loaded.itos == vocab.itos and loaded.stoi == vocab.stoi
    loaded.save(tmp_path / "again.txt")
    assert (tmp_path / "again.txt").read_bytes() == data


def test_loading_a_file_without_the_specials_names_the_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("the\nmovie\n<unk>\n<pad>\n", encoding="utf-8")
    with pytest.raises(UserError) as error:
        Vocab.load(path)
    assert str(path) in str(error.value)
    assert "<unk>" in str(error.value)


def test_loading_a_missing_file_names_it(tmp_path):
    with pytest.raises(UserError, match="vocab.txt"):
        Vocab.load(tmp_path / "vocab.txt")


def test_a_vocabulary_with_a_repeated_token_is_refused(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("<unk>\n<pad>\nword\nword\n", encoding="utf-8")
    with pytest.raises(UserError) as error:
        Vocab.load(path)
    assert str(path) in str(error.value)
