"""torchtext's ``basic_english`` tokenizer, reimplemented exactly."""

from __future__ import annotations

import hashlib
import json
import re

# torchtext.data.utils._patterns_dict, in its order. The order matters: deleting '"'
# can join the characters of a '<br />' (as in '<br "/>'), so '"' goes before '<br />'.
RULES = [
    (re.compile(pattern), replacement)
    for pattern, replacement in [
        (r"\'", " '  "),
        (r"\"", ""),
        (r"\.", " . "),
        (r"<br \/>", " "),
        (r",", " , "),
        (r"\(", " ( "),
        (r"\)", " ) "),
        (r"\!", " ! "),
        (r"\?", " ? "),
        (r"\;", " "),
        (r"\:", " "),
        (r"\s+", " "),
    ]
]

# The same rules as plain substring replacements, which run in C without the regex engine.
# '\s+' -> ' ' is left out: str.split() splits on the same Unicode whitespace.
# The rules for "'" and '.' move after '<br />': their output holds a "'" or a '.',
# so it can neither make nor break a '<br />'.
_FAST_REPLACEMENTS = [
    ('"', ""),
    ("<br />", " "),
    ("'", " '  "),
    (".", " . "),
    (",", " , "),
    ("(", " ( "),
    (")", " ) "),
    ("!", " ! "),
    ("?", " ? "),
    (";", " "),
    (":", " "),
]


def normalize(text: str) -> str:
    """Lowercase ``text`` and apply the basic_english substitutions in order (the reference)."""
    text = text.lower()
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text


def tokenize_reference(text: str) -> list[str]:
    """The rules applied literally, one regex at a time: slow, kept to check ``tokenize``."""
    return normalize(text).split()


def tokenize(text: str) -> list[str]:
    """Split ``text`` into basic_english tokens (identical to ``tokenize_reference``; str.replace, no regex)."""
    text = text.lower()
    for old, new in _FAST_REPLACEMENTS:
        text = text.replace(old, new)
    return text.split()


# Every rule at work at least once, so that a change of the tokenizer's behaviour changes the fingerprint.
_PROBE = (
    'It\'s "GREAT"!<br />Isn\'t it? (Yes; no: maybe.) 1,000.5 <br/> <br "/> caf\u00e9\u00a0'
    "\u2003tabs\there\nnew-lines\r\n...!!?? \u00c9T\u00c9 \u0130 '' \"\""
)


def fingerprint() -> str:
    """A short hash of the rules and of what ``tokenize`` makes of a probe text.

    Checkpoints record it, so that a model is never fed tokens cut by other rules than its own.
    """
    description = {
        "rules": [(pattern.pattern, replacement) for pattern, replacement in RULES],
        "fast": _FAST_REPLACEMENTS,
        "probe": tokenize(_PROBE),
    }
    return hashlib.sha256(json.dumps(description, ensure_ascii=True).encode()).hexdigest()[:16]
