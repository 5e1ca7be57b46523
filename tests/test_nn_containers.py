"""nn containers and their errors, device-independent (the device tests are needle_nn.testing.test_nn_basic)."""

from __future__ import annotations

import needle.nn as nn
import pytest


def test_train_eval_recursive():
    model = nn.Sequential(nn.Linear(2, 2), nn.Residual(nn.Sequential(nn.Dropout(), nn.BatchNorm1d(2))))
    model.eval()
    assert all(not m.training for m in [model, *model._children()])
    model.train()
    assert all(m.training for m in [model, *model._children()])


@pytest.mark.parametrize("make", [lambda: nn.Sequential(nn.ReLU), lambda: nn.Sequential(nn.Linear(2, 2), nn.Tanh),
                                  lambda: nn.Residual(nn.ReLU)])
def test_module_class_instead_of_instance_is_a_clear_type_error(make):
    with pytest.raises(TypeError, match=r"got the class (ReLU|Tanh); write (ReLU|Tanh)\(\)"):
        make()


def test_non_module_argument_rejected():
    with pytest.raises(TypeError, match="expects Module instances"):
        nn.Sequential(3)
