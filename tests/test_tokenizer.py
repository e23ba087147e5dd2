"""The tokenizer is torchtext's basic_english: each rule, their order, and fast == reference."""

import random

import pytest
from conftest import ROOT

from textrnn.text.tokenizer import normalize, tokenize, tokenize_reference

IMDB_TEST = ROOT / "datasets" / "imdb" / "test.parquet"  # shipped with the project: every clone has it


@pytest.mark.parametrize(
    "text, tokens",
    [
        # lowercase
        ("Hello WORLD ÉTÉ", ["hello", "world", "été"]),
        # "'" -> " '  ": the apostrophe becomes a token of its own
        ("don't", ["don", "'", "t"]),
        ("'quoted'", ["'", "quoted", "'"]),
        # '"' is deleted, joining what was around it
        ('say "hi"', ["say", "hi"]),
        ('a"b', ["ab"]),
        # '.' is a token
        ("end. next", ["end", ".", "next"]),
        ("3.14", ["3", ".", "14"]),
        ("...", [".", ".", "."]),
        # '<br />' becomes a space
        ("one<br />two", ["one", "two"]),
        ("one<br /><br />two", ["one", "two"]),
        # ',', '(', ')', '!', '?' are tokens
        ("a,b", ["a", ",", "b"]),
        ("(a", ["(", "a"]),
        ("a)", ["a", ")"]),
        ("wow!", ["wow", "!"]),
        ("why?", ["why", "?"]),
        # ';' and ':' are dropped
        ("a;b", ["a", "b"]),
        ("a:b", ["a", "b"]),
        ("time: 10;", ["time", "10"]),
        # whitespace runs of any kind separate tokens
        ("a \t\n\x0b\u2028\xa0 b", ["a", "b"]),
        ("  leading and trailing  ", ["leading", "and", "trailing"]),
        # what no rule touches stays inside a token
        ("10/10 a-b <i>x</i> $5 #1", ["10/10", "a-b", "<i>x</i>", "$5", "#1"]),
        ("", []),
    ],
)
def test_each_rule(text, tokens):
    assert tokenize_reference(text) == tokens
    assert tokenize(text) == tokens


def test_issue_example():
    assert tokenize("Worst film (ever)!? 10/10") == ["worst", "film", "(", "ever", ")", "!", "?", "10/10"]
    assert tokenize_reference("Worst film (ever)!? 10/10") == ["worst", "film", "(", "ever", ")", "!", "?", "10/10"]


def test_apostrophe_rule_spacing_is_exact():
    # torchtext replaces "'" with " '  " (one space before, two after) before collapsing whitespace.
    assert normalize("don't") == "don ' t"
    assert normalize("a'") == "a ' "


def test_quote_deletion_comes_before_line_break_removal():
    # Deleting '"' joins '<br "/>' into '<br />', which the next rules then remove.
    assert tokenize_reference('a<br "/>b') == ["a", "b"]
    assert tokenize('a<br "/>b') == ["a", "b"]
    assert tokenize('<BR "/>') == []


def test_line_break_needs_its_exact_spelling():
    # Only the literal '<br />' is removed; other spellings fall apart under the later rules.
    assert tokenize("a<br/>b") == ["a<br/>b"]
    assert tokenize("a<br>b") == ["a<br>b"]
    assert tokenize("a<br\t/>b") == ["a<br", "/>b"]
    assert tokenize("a<br./>b") == ["a<br", ".", "/>b"]


TRICKY = (
    list("abcXYZ")
    + ["Σ", "İ", "ß", "é", "K", "ﬁ"]
    + list("'\".,()!?;:<>/")
    + ["br", "<br />", "<br ", '<br "', "/>", '"/']
    + [" ", " ", "\t", "\n", "\x0b", "\u2028", "\xa0", "\x1c", "\x85", "\u3000", "\u200b", "-", "1"]
)


def test_fast_equals_reference_on_random_strings():
    rng = random.Random(1234)
    for _ in range(4000):
        text = "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 30)))
        assert tokenize(text) == tokenize_reference(text), repr(text)


def test_fast_equals_reference_on_real_reviews():
    import pandas as pd

    texts = pd.read_parquet(IMDB_TEST, columns=["text"])["text"].iloc[:2000]
    assert len(texts) == 2000
    for text in texts:
        assert tokenize(text) == tokenize_reference(text), text[:200]
