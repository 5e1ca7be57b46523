"""Word-level language-model data: Dictionary, Corpus (PTB layout), batchify, get_batch."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from needle_core.autograd import Tensor

_FORMAT = "a text file with one sentence per line and space-separated tokens (the PTB layout: train.txt, test.txt)"


class Dictionary:
    """Maps words to consecutive ids in order of first appearance."""

    def __init__(self) -> None:
        self.word2idx: dict[str, int] = {}
        self.idx2word: list[str] = []

    def add_word(self, word: str) -> int:
        if word not in self.word2idx:
            self.word2idx[word] = len(self.idx2word)
            self.idx2word.append(word)
        return self.word2idx[word]

    def __len__(self) -> int:
        return len(self.idx2word)


class Corpus:
    """``train``/``test`` id lists of ``base_dir/train.txt``/``test.txt``, ``<eos>`` after each line."""

    def __init__(self, base_dir: str | os.PathLike, max_lines: int | None = None) -> None:
        self.dictionary = Dictionary()
        self.train = self.tokenize(os.path.join(os.fspath(base_dir), "train.txt"), max_lines)
        self.test = self.tokenize(os.path.join(os.fspath(base_dir), "test.txt"), max_lines)

    def tokenize(self, path: str, max_lines: int | None = None) -> list[int]:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"corpus file not found: {path!r}; expected {_FORMAT}")
        ids: list[int] = []
        try:
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f):
                    if max_lines is not None and n >= max_lines:
                        break
                    ids.extend(self.dictionary.add_word(w) for w in line.split() + ["<eos>"])
        except UnicodeDecodeError as exc:
            raise ValueError(f"corpus file {path!r} is not UTF-8 text ({exc}); expected {_FORMAT}") from exc
        return ids


def batchify(data: list[int] | np.ndarray, batch_size: int, device: Any = None, dtype: Any = None) -> np.ndarray:
    """``(nbatch, batch_size)``: column ``j`` is the ``j``-th contiguous slice of ``data``.

    The tail that does not fill a whole column is dropped. ``device``/``dtype`` are
    accepted for the course's signature; the result is a NumPy array.
    """
    nbatch = len(data) // batch_size
    return np.asarray(data[: nbatch * batch_size]).reshape(batch_size, nbatch).T


def get_batch(batches: np.ndarray, i: int, bptt: int, device: Any = None, dtype: Any = None) -> tuple[Tensor, Tensor]:
    """Rows ``i .. i+bptt`` as inputs ``(bptt, bs)`` and the next rows, flattened, as targets."""
    seq_len = min(bptt, len(batches) - 1 - i)
    dtype = dtype or "float32"
    data = Tensor(batches[i : i + seq_len], device=device, dtype=dtype, requires_grad=False)
    target = Tensor(batches[i + 1 : i + 1 + seq_len].reshape(-1), device=device, dtype=dtype, requires_grad=False)
    return data, target


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
