"""What ``needle train`` can train: a model, its data and its defaults, per ``--model``.

Each task builds a model on a device plus train/validation batch sources with the
DataLoader interface (``iter``, ``len``, ``order``, ``batch_index``, ``resume``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
from needle_core.autograd import Tensor

from .. import nn
from ..apps.mlp_resnet import MLPResNet
from ..apps.models import LanguageModel, ResNet9
from ..data import CIFAR10Dataset, Corpus, DataLoader, MNISTDataset, batchify, get_batch
from ..data.mnist import load_mnist
from .errors import UsageError

#: Shipped data: the MNIST test set; its first 8,000 images train, the last 2,000 validate.
SHIPPED_TRAIN = 8000


@dataclass
class Task:
    model: nn.Module
    train: Any
    val: Any
    loss_fn: nn.Module = field(default_factory=nn.SoftmaxLoss)
    description: str = ""


_COMMON = {"seed": 0, "momentum": 0.0}
DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp_resnet": {**_COMMON, "epochs": 10, "batch_size": 100, "lr": 1e-3, "optimizer": "adam", "weight_decay": 1e-3},
    "resnet9": {**_COMMON, "epochs": 10, "batch_size": 128, "lr": 1e-3, "optimizer": "adam", "weight_decay": 1e-3},
    "lstm_lm": {**_COMMON, "epochs": 5, "batch_size": 16, "lr": 4.0, "optimizer": "sgd", "weight_decay": 0.0},
}


def shipped_mnist_files() -> tuple[str, str]:
    folder = resources.files("needle_nn") / "datasets" / "mnist"
    return str(folder / "t10k-images-idx3-ubyte.gz"), str(folder / "t10k-labels-idx1-ubyte.gz")


# What each model reads from --data-dir, and the subfolder of the course's data/ folder holding it.
_DATA_FILES: dict[str, tuple[str, ...]] = {
    "mlp_resnet": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                   "t10k-labels-idx1-ubyte.gz"),
    "resnet9": (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"),
    "lstm_lm": ("train.txt", "test.txt"),
}
_COURSE_SUBFOLDER = {"resnet9": "cifar-10-batches-py", "lstm_lm": "ptb"}


def data_files(model: str) -> tuple[str, ...]:
    """The files ``--model model`` reads from its data folder."""
    return _DATA_FILES[model]


def data_folder(model: str, data_dir: str) -> str:
    """Accept the course's ``data/`` folder as well as the dataset folder inside it."""
    nested = os.path.join(data_dir, _COURSE_SUBFOLDER.get(model, ""))
    marker = _DATA_FILES[model][0]
    if model in _COURSE_SUBFOLDER and not os.path.exists(os.path.join(data_dir, marker)) and os.path.isdir(nested):
        return nested
    return data_dir


def _limit(X: np.ndarray, y: np.ndarray, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    return (X, y) if n is None else (X[:n], y[:n])


def mlp_resnet(device: Any, batch_size: int, data_dir: str | None, limit: int | None) -> Task:
    if data_dir is None:
        X, y = load_mnist(*shipped_mnist_files())
        train = MNISTDataset.from_arrays(*_limit(X[:SHIPPED_TRAIN], y[:SHIPPED_TRAIN], limit))
        val = MNISTDataset.from_arrays(X[SHIPPED_TRAIN:], y[SHIPPED_TRAIN:])
        where = f"shipped MNIST (t10k): {len(train)} train / {len(val)} validation images"
    else:
        train = MNISTDataset(os.path.join(data_dir, "train-images-idx3-ubyte.gz"),
                             os.path.join(data_dir, "train-labels-idx1-ubyte.gz"))
        train = MNISTDataset.from_arrays(*_limit(train.images, train.labels, limit))
        val = MNISTDataset(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"),
                           os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz"))
        where = f"MNIST from {data_dir}: {len(train)} train / {len(val)} test images"
    model = MLPResNet(784, 100, num_blocks=3, device=device)
    return Task(model, DataLoader(train, batch_size, shuffle=True, device=device),
                DataLoader(val, 1000, device=device), description=f"MLPResNet(784, 100, 3 blocks) on {where}")


def resnet9(device: Any, batch_size: int, data_dir: str | None, limit: int | None) -> Task:
    if data_dir is None:
        raise UsageError("--model resnet9 needs --data-dir DIR holding CIFAR-10's python batches "
                         "(data_batch_1..5, test_batch from cifar-10-python.tar.gz)")
    data_dir = data_folder("resnet9", data_dir)
    train = CIFAR10Dataset(data_dir, train=True)
    if limit is not None:
        train.X, train.y = train.X[:limit], train.y[:limit]
    val = CIFAR10Dataset(data_dir, train=False)
    return Task(ResNet9(device=device), DataLoader(train, batch_size, shuffle=True, device=device),
                DataLoader(val, 500, device=device), description=f"ResNet9 on CIFAR-10 from {data_dir}")


class BPTTBatches:
    """Truncated-BPTT chunks of a batchified corpus, with the DataLoader interface."""

    def __init__(self, data: np.ndarray, seq_len: int, device: Any) -> None:
        self.data, self.seq_len, self.device = data, seq_len, device
        self.starts = np.arange(0, data.shape[0] - 1, seq_len)
        self.order: np.ndarray | None = None
        self.batch_index = 0
        self._start = 0

    def __len__(self) -> int:
        return len(self.starts)

    def resume(self, order: np.ndarray, batch_index: int) -> None:
        self._start = int(batch_index)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        start, self._start = self._start, 0
        self.order = self.starts
        for k in range(start, len(self.starts)):
            self.batch_index = k + 1
            yield get_batch(self.data, int(self.starts[k]), self.seq_len, device=self.device, dtype="float32")


class _Carry:
    """Holds the recurrent state outside the module tree (it is not a parameter or buffer)."""

    h: Any = None


class StatefulLM(nn.Module):
    """Carries the hidden state across chunks (detached: truncated BPTT); ``reset()`` per epoch."""

    def __init__(self, lm: LanguageModel) -> None:
        super().__init__()
        self.lm = lm
        self.carry = _Carry()

    def reset(self) -> None:
        self.carry.h = None

    def hidden_arrays(self) -> dict[str, np.ndarray]:
        """The carried state as arrays (``{"0": h}`` or ``{"0": h, "1": c}``), for a checkpoint."""
        h = self.carry.h
        if h is None:
            return {}
        return {str(i): t.numpy() for i, t in enumerate(h if isinstance(h, tuple) else (h,))}

    def load_hidden_arrays(self, arrays: dict[str, np.ndarray], device: Any) -> None:
        """Restore what ``hidden_arrays`` saved, so a run resumed mid-epoch continues exactly."""
        parts = tuple(Tensor(np.asarray(arrays[k]), device=device, dtype="float32", requires_grad=False)
                      for k in sorted(arrays, key=int))
        self.carry.h = None if not parts else parts[0] if len(parts) == 1 else parts

    def forward(self, x: Tensor) -> Tensor:
        logits, h = self.lm(x, self.carry.h)
        self.carry.h = tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()
        return logits


def lstm_lm(device: Any, batch_size: int, data_dir: str | None, limit: int | None, seq_len: int = 40) -> Task:
    if data_dir is None:
        raise UsageError("--model lstm_lm needs --data-dir DIR holding the Penn Treebank text "
                         "files train.txt and test.txt (one sentence per line)")
    data_dir = data_folder("lstm_lm", data_dir)
    corpus = Corpus(data_dir, max_lines=limit)
    vocab = len(corpus.dictionary)
    model = StatefulLM(LanguageModel(64, vocab, 128, num_layers=1, seq_model="lstm", seq_len=seq_len, device=device))
    train = BPTTBatches(batchify(corpus.train, batch_size), seq_len, device)
    val = BPTTBatches(batchify(corpus.test, batch_size), seq_len, device)
    return Task(model, train, val, description=f"LSTM language model on PTB from {data_dir} (vocabulary {vocab})")


BUILDERS = {"mlp_resnet": mlp_resnet, "resnet9": resnet9, "lstm_lm": lstm_lm}


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
