"""Optimiser argument errors (the device tests are needle_nn.testing.test_optim)."""

from __future__ import annotations

import needle as ndl
import numpy as np
import pytest


def test_optimizer_rejects_non_parameters():
    with pytest.raises(TypeError, match="model.parameters"):
        ndl.optim.SGD([np.zeros(3)])
