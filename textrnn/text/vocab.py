"""The vocabulary: token <-> id, built as torchtext's ``build_vocab_from_iterator`` builds it."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from textrnn.core.errors import UserError
from textrnn.core.filesystem import atomic_path, read_fault

UNK = "<unk>"
PAD = "<pad>"
SPECIALS = (UNK, PAD)
UNK_ID = 0
PAD_ID = 1


class Vocab:
    """A list of tokens where line *i* is id *i*; unknown tokens map to ``<unk>`` (0)."""

    def __init__(self, tokens: Sequence[str]):
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {list(SPECIALS)}, got {repr(list(tokens[:2]))[:80]}")
        self.itos: list[str] = list(tokens)
        self.stoi: dict[str, int] = {token: i for i, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("a vocabulary holds each token once")

    @classmethod
    def build(cls, counts: Counter, min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """Specials first, then tokens with count >= ``min_freq`` by descending count, ties alphabetical.

        ``max_size`` caps the whole vocabulary, specials included (torchtext's ``max_tokens``).
        """
        ranked = sorted(
            ((token, n) for token, n in counts.items() if n >= min_freq and token not in SPECIALS),
            key=lambda item: (-item[1], item[0]),
        )
        if max_size is not None:
            ranked = ranked[: max(max_size - len(SPECIALS), 0)]
        return cls(list(SPECIALS) + [token for token, _ in ranked])

    def __len__(self) -> int:
        return len(self.itos)

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, UNK_ID)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        get = self.stoi.get
        return [get(token, UNK_ID) for token in tokens]

    def text(self) -> str:
        """The file's content: one token per line, line *i* is id *i*."""
        return "".join(token + "\n" for token in self.itos)

    def fingerprint(self) -> str:
        """sha256 of the file's content: two vocabularies of one size can hold other tokens."""
        return hashlib.sha256(self.text().encode("utf-8")).hexdigest()

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(self.text(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocab:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{path}: vocabulary not found; run `dvc repro build_vocab` first") from None
        except IsADirectoryError:
            raise UserError(f"{path}: is a folder; a vocabulary is a text file, one token per line") from None
        except UnicodeDecodeError:
            raise UserError(f"{path}: not a UTF-8 text file; rebuild it with `dvc repro -f build_vocab`") from None
        except OSError as error:
            raise read_fault(path, error) from None
        # Tokens never hold whitespace (the tokenizer splits on it), so '\n' is a safe separator.
        tokens = text.split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        try:
            return cls(tokens)
        except ValueError as error:
            raise UserError(
                f"{path}: not a textrnn vocabulary ({error}); rebuild it with `dvc repro -f build_vocab`"
            ) from None
