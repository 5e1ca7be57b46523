"""hw4's reference models: ResNet9 (CIFAR-10) and LanguageModel (PTB)."""

from __future__ import annotations

from typing import Any

from needle_core.autograd import Tensor

from .. import nn


def ConvBN(in_channels: int, out_channels: int, kernel_size: int, stride: int, device: Any = None,
           dtype: str = "float32") -> nn.Module:
    """Conv -> BatchNorm2d -> ReLU."""
    return nn.Sequential(
        nn.Conv(in_channels, out_channels, kernel_size, stride=stride, device=device, dtype=dtype),
        nn.BatchNorm2d(out_channels, device=device, dtype=dtype),
        nn.ReLU(),
    )


class ResNet9(nn.Module):
    """NCHW ``(N, 3, 32, 32)`` images -> ``(N, 10)`` logits; 431,946 parameters."""

    def __init__(self, device: Any = None, dtype: str = "float32") -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.model = nn.Sequential(
            ConvBN(3, 16, 7, 4, **kw),
            ConvBN(16, 32, 3, 2, **kw),
            nn.Residual(nn.Sequential(ConvBN(32, 32, 3, 1, **kw), ConvBN(32, 32, 3, 1, **kw))),
            ConvBN(32, 64, 3, 2, **kw),
            ConvBN(64, 128, 3, 2, **kw),
            nn.Residual(nn.Sequential(ConvBN(128, 128, 3, 1, **kw), ConvBN(128, 128, 3, 1, **kw))),
            nn.Flatten(),
            nn.Linear(128, 128, **kw),
            nn.ReLU(),
            nn.Linear(128, 10, **kw),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LanguageModel(nn.Module):
    """Embedding -> RNN or LSTM -> Linear; ``forward(x (seq_len, batch), h)`` -> ``(logits, h)``."""

    def __init__(self, embedding_size: int, output_size: int, hidden_size: int, num_layers: int = 1,
                 seq_model: str = "rnn", seq_len: int = 40, device: Any = None, dtype: str = "float32") -> None:
        super().__init__()
        if seq_model not in ("rnn", "lstm"):
            raise ValueError(f"LanguageModel seq_model must be 'rnn' or 'lstm', got {seq_model!r}")
        self.hidden_size = hidden_size
        self.seq_len = seq_len
        self.embedding = nn.Embedding(output_size, embedding_size, device=device, dtype=dtype)
        seq_cls = nn.RNN if seq_model == "rnn" else nn.LSTM
        self.seq_model = seq_cls(embedding_size, hidden_size, num_layers, device=device, dtype=dtype)
        self.linear = nn.Linear(hidden_size, output_size, device=device, dtype=dtype)

    def forward(self, x: Tensor, h: Any = None) -> tuple[Tensor, Any]:
        seq_len, bs = x.shape
        out, h = self.seq_model(self.embedding(x), h)
        return self.linear(out.reshape((seq_len * bs, self.hidden_size))), h


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
