"""``tokenizer.tokenize`` and the vocabulary lookup in C++ (csrc/tokenize.cpp), many texts per call.

The same tokens as ``tokenizer.tokenize``, faster (docs/speed.md): C++ works on the UTF-8 bytes,
and Python lowercases the texts with characters beyond ASCII (``str.lower``: its Unicode rules
stay Python's). It is built with the system C++ compiler on first use (``textrnn.core.native``) and
checked on the tokenizer's probe text before it is used. Where it cannot be built, fails that
check, or ``TEXTRNN_FAST_TOKENIZER=0`` is set, ``library()`` is None and callers tokenize in
Python; one log line says why.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from textrnn.core import native
from textrnn.text import tokenizer

log = logging.getLogger("textrnn.text.tokenizer")

SWITCH = "TEXTRNN_FAST_TOKENIZER"  # "0": tokenize in Python
SOURCES = [Path(__file__).resolve().parent / "csrc" / "tokenize.cpp"]
# Python strings may hold lone surrogates (from a file read with errors="surrogateescape"); they pass through.
_ERRORS = "surrogatepass"

_pointer = ctypes.c_void_p
_int64s = np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")
_int32s = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")


def utf8_texts(texts: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """Texts as UTF-8 back to back, and each one's byte offset (n + 1 entries, from 0)."""
    encoded = [text.encode("utf-8", _ERRORS) for text in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    return b"".join(encoded), offsets


def decode_texts(data: bytes, offsets: np.ndarray) -> list[str]:
    """``utf8_texts``'s inverse."""
    bounds = offsets.tolist()
    return [data[a:b].decode("utf-8", _ERRORS) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


class _Table:
    """A C++ table of tokens (each with a value: an id or a count), freed with this object."""

    def __init__(self, library: FastTokenizer):
        self._library = library
        self.handle = library.lib.textrnn_table_new()
        if not self.handle:
            raise MemoryError("the tokenizer's table")

    def export(self) -> tuple[bytes, np.ndarray]:
        """Its tokens in the order they came, each followed by a newline, as UTF-8; and their values."""
        lib = self._library.lib
        joined = ctypes.create_string_buffer(lib.textrnn_table_joined_size(self.handle))
        values = np.empty(lib.textrnn_table_size(self.handle), dtype=np.int64)
        lib.textrnn_table_export(self.handle, joined, values)
        return joined.raw, values

    def __del__(self):
        if getattr(self, "handle", None):
            self._library.lib.textrnn_table_free(self.handle)
            self.handle = None


class Counts(_Table):
    """Token counts in a C++ hash table, in the order tokens first came."""

    def add_texts(self, data: bytes, offsets: np.ndarray) -> None:
        """Count the tokens of texts held as UTF-8 back to back (see ``FastTokenizer.encode``)."""
        data, offsets = self._library.lowercase_beyond_ascii(data, offsets)
        if self._library.lib.textrnn_count(self.handle, data, offsets, len(offsets) - 1) != 0:
            raise MemoryError("counting tokens")

    def add_counts(self, other: Counts) -> None:
        """Add ``other``'s counts; its new tokens come after these, in its order (tables of
        consecutive texts added in turn keep the order one table of them all would have)."""
        if other is self:
            raise ValueError("a table cannot add its own counts")
        if self._library.lib.textrnn_table_add_table(self.handle, other.handle) != 0:
            raise MemoryError("adding token counts")

    def counter(self) -> Counter:
        """The counts, in the order tokens first came."""
        joined, counts = self.export()
        tokens = joined.decode("utf-8", _ERRORS).split("\n")
        tokens.pop()  # after the last newline
        return Counter(dict(zip(tokens, counts.tolist(), strict=True)))


class Vocabulary(_Table):
    """A vocabulary's tokens (line i of vocab.txt is id i) in a C++ hash table, for ``FastTokenizer.encode``."""

    def __init__(self, library: FastTokenizer, tokens: Sequence[str]):
        super().__init__(library)
        joined = "".join(token + "\n" for token in tokens).encode("utf-8", _ERRORS)
        status = library.lib.textrnn_table_add_tokens(self.handle, joined, len(joined), len(tokens))
        if status == -2:
            raise MemoryError("the tokenizer's vocabulary table")
        if status != 0:
            raise ValueError("a vocabulary holds each token once, and no token holds a newline")


class FastTokenizer:
    """The loaded library's functions."""

    def __init__(self, path: Path):
        lib = ctypes.CDLL(str(path))
        lib.textrnn_table_new.restype = _pointer
        lib.textrnn_table_new.argtypes = []
        lib.textrnn_table_free.argtypes = [_pointer]
        lib.textrnn_table_size.argtypes = lib.textrnn_table_joined_size.argtypes = [_pointer]
        lib.textrnn_table_size.restype = lib.textrnn_table_joined_size.restype = ctypes.c_int64
        lib.textrnn_table_export.argtypes = [_pointer, ctypes.c_char_p, _int64s]
        lib.textrnn_table_add_tokens.argtypes = [_pointer, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64]
        lib.textrnn_table_add_tokens.restype = ctypes.c_int
        lib.textrnn_table_add_table.argtypes = [_pointer, _pointer]
        lib.textrnn_table_add_table.restype = ctypes.c_int
        lib.textrnn_non_ascii.argtypes = [ctypes.c_char_p, _int64s, ctypes.c_int64, _int64s]
        lib.textrnn_non_ascii.restype = ctypes.c_int64
        lib.textrnn_count.argtypes = [_pointer, ctypes.c_char_p, _int64s, ctypes.c_int64]
        lib.textrnn_count.restype = ctypes.c_int
        lib.textrnn_encode.argtypes = [_pointer, ctypes.c_char_p, _int64s, ctypes.c_int64, ctypes.c_int32]
        lib.textrnn_encode.argtypes += [_int32s, ctypes.c_int64, _int64s]
        lib.textrnn_encode.restype = ctypes.c_int64
        self.lib = lib

    def vocabulary(self, tokens: Sequence[str]) -> Vocabulary:
        return Vocabulary(self, tokens)

    def counts(self) -> Counts:
        return Counts(self)

    def count(self, texts: Sequence[str]) -> Counter:
        """How often each token occurs in ``texts``, in the order tokens first occur."""
        counts = self.counts()
        counts.add_texts(*utf8_texts(texts))
        return counts.counter()

    def lowercase_beyond_ascii(self, data: bytes, offsets: np.ndarray) -> tuple[bytes, np.ndarray]:
        """The texts with characters beyond ASCII lowercased by str.lower; the others as they are.

        The C++ side lowercases ASCII letters, which is all str.lower does to an ASCII text; a text
        lowercased here is lowercased there once more, which changes nothing.
        """
        which = np.empty(len(offsets) - 1, dtype=np.int64)
        found = self.lib.textrnn_non_ascii(data, offsets, len(which), which)
        if found == 0:
            return data, offsets
        sizes = np.diff(offsets)
        pieces, done = [], 0
        for i in which[:found].tolist():
            start, end = int(offsets[i]), int(offsets[i + 1])
            text = data[start:end].decode("utf-8", _ERRORS).lower().encode("utf-8", _ERRORS)
            pieces += [data[done:start], text]
            sizes[i], done = len(text), end  # a lowercased character may take other bytes ('İ' -> 'i̇')
        pieces.append(data[done:])
        lowered = np.zeros(len(offsets), dtype=np.int64)
        np.cumsum(sizes, out=lowered[1:])
        return b"".join(pieces), lowered

    def encode(
        self, vocabulary: Vocabulary, data: bytes, offsets: np.ndarray, unknown: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The token ids of texts held as UTF-8 back to back (text i is ``data[offsets[i]:offsets[i + 1]]``,
        ``offsets[0]`` is 0), concatenated (int32; ``unknown`` for a token not in ``vocabulary``), and each
        text's number of tokens."""
        data, offsets = self.lowercase_beyond_ascii(data, offsets)
        n = len(offsets) - 1
        lengths = np.empty(n, dtype=np.int64)
        # Room for a token per 3 bytes first (prose has one per 4 to 6); a token per byte, the most there
        # can be, only for text that needs it: 4 bytes of ids per byte of text would be a lot of memory.
        for capacity in (len(data) // 3 + n, len(data)):
            ids = np.empty(capacity, dtype=np.int32)
            written = self.lib.textrnn_encode(vocabulary.handle, data, offsets, n, unknown, ids, capacity, lengths)
            if written != -3:
                break
        if written < 0:
            raise MemoryError("encoding texts")
        return ids[:written].copy(), lengths


def _agrees_with_python(fast: FastTokenizer) -> bool:
    """Whether the library tokenizes the probe text (every rule at work) as ``tokenizer.tokenize`` does."""
    texts = [tokenizer._PROBE, tokenizer._PROBE.upper(), ""]
    expected = [tokenizer.tokenize(text) for text in texts]
    itos = list(dict.fromkeys(token for tokens in expected for token in tokens))
    ids, lengths = fast.encode(fast.vocabulary(itos), *utf8_texts(texts), -1)
    got = [itos[i] for i in ids.tolist()]
    flat = [token for tokens in expected for token in tokens]
    counts = fast.count(texts)
    return got == flat and lengths.tolist() == [len(t) for t in expected] and counts == Counter(flat)


_lock = threading.Lock()
_loaded: FastTokenizer | None = None
_tried = False


def _load() -> FastTokenizer | None:
    if os.environ.get(SWITCH, "1") == "0":
        log.info("tokenizer: %s=0, tokenizing in Python", SWITCH)
        return None
    fast = native.load(
        SOURCES, "textrnn_tokenizer", FastTokenizer, "tokenizer", "C++ code", "using the Python code", log
    )
    if fast is None:
        return None
    if not _agrees_with_python(fast):
        log.warning("tokenizer: the C++ tokenizer disagrees with tokenizer.tokenize on its probe; tokenizing in Python")
        return None
    return fast


def library() -> FastTokenizer | None:
    """The C++ tokenizer (the first call builds or loads it), or None where it is not available."""
    global _loaded, _tried
    with _lock:
        if not _tried:
            _loaded, _tried = _load(), True
    return _loaded
