"""RNNCell argument errors (the device tests are needle_nn.testing.test_nn_sequence)."""

from __future__ import annotations

import needle.nn as nn
import pytest


def test_rnn_cell_rejects_unknown_nonlinearity():
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNNCell(2, 2, nonlinearity="gelu")
