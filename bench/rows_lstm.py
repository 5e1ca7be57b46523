"""One training step of the course's LSTM language model (hw4's LanguageModel:
vocabulary 10k, embedding 100, hidden 100, 2 LSTM layers, 40 steps of batch 16, SGD
lr 0.01): forward from a zero state, SoftmaxLoss over every token, backward, update.
On every available needle device, against the same model in PyTorch CPU with its
fused ``nn.LSTM``. Throughput is tokens/s; the ratio is time ÷ PyTorch time."""

from __future__ import annotations

import numpy as np
from _steps import needle_step_rows, torch_step_row
from harness import Row

VOCAB, EMBED, HIDDEN, LAYERS, SEQ, BATCH = 10_000, 100, 100, 2, 40, 16
GROUP = f"LSTM LM V={VOCAB // 1000}k E{EMBED} H{HIDDEN} L{LAYERS} T{SEQ} batch-{BATCH} SGD step"
TORCH_KEY = "lstm torch"
OPTIMISER = "sgd"
TOKENS = SEQ * BATCH
TORCH_HINT = "PyTorch not installed (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"


def batch() -> tuple[np.ndarray, np.ndarray]:
    """Token ids ``(SEQ, BATCH)`` (as float32, as needle's data loader yields them) and
    the next-token targets ``(SEQ * BATCH,)``."""
    rng = np.random.default_rng(0)
    return rng.integers(0, VOCAB, (SEQ, BATCH)).astype(np.float32), rng.integers(0, VOCAB, SEQ * BATCH)


def needle_model(dev):
    from needle.apps.models import LanguageModel

    return LanguageModel(EMBED, VOCAB, HIDDEN, LAYERS, seq_model="lstm", seq_len=SEQ, device=dev)


def torch_model():
    import torch
    from torch import nn

    class LanguageModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(VOCAB, EMBED)
            self.lstm = nn.LSTM(EMBED, HIDDEN, LAYERS)  # fused, time-major like needle's
            self.linear = nn.Linear(HIDDEN, VOCAB)

        def forward(self, x):
            out, h = self.lstm(self.embedding(x.long()))
            return self.linear(out.reshape(-1, HIDDEN)), h

    torch.manual_seed(0)
    return LanguageModel()


def _torch_row() -> Row:
    try:
        model = torch_model()
    except ImportError:
        return Row(GROUP, "torch", None, key=TORCH_KEY, skip=TORCH_HINT)
    return torch_step_row(GROUP, model, *batch(), TORCH_KEY, OPTIMISER, work=TOKENS, work_unit="tokens/s",
                          note="fused nn.LSTM")


def _needle_rows() -> list[Row]:
    def cell_path(dev) -> str:
        return "fused lstm_cell kernels" if getattr(dev, "lstm_cell", None) is not None else "LSTM cell composed"

    return needle_step_rows(GROUP, needle_model, *batch(), TORCH_KEY, cell_path, OPTIMISER, work=TOKENS,
                            work_unit="tokens/s")


def rows() -> list[Row]:
    return [_torch_row(), *_needle_rows()]
