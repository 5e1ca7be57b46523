"""State dicts, ndl.save / ndl.load and bit-identical resumption of training on this device."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest

from needle_nn import checkpoint
from needle_nn.testing.support import seeded_mlp_resnet


def test_state_dict_keys_hold_parameters_and_buffers(needle_device):
    model = seeded_mlp_resnet(needle_device, 0)
    state = model.state_dict()
    assert "modules.0.weight" in state and "modules.4.bias" in state
    assert "modules.2.modules.0.fn.modules.1.running_mean" in state
    assert "modules.3.modules.0.fn.modules.5.running_var" in state
    assert len(state) == len(model.parameters()) + 2 * 4  # 4 BatchNorms, 2 buffers each
    assert all(isinstance(v, ndl.Tensor) for v in state.values())


def test_save_load_roundtrip_restores_outputs(needle_device, tmp_path):
    model = seeded_mlp_resnet(needle_device, 0)
    model(ndl.Tensor(np.random.randn(6, 12).astype("float32"), device=needle_device))  # move running stats
    ndl.save(model.state_dict(), tmp_path / "m.npz")
    other = seeded_mlp_resnet(needle_device, 1)
    params_before = other.parameters()
    other.load_state_dict(ndl.load(tmp_path / "m.npz"))
    assert other.parameters() == params_before  # loaded in place: optimisers keep their references
    model.eval()
    other.eval()
    x = ndl.Tensor(np.random.randn(3, 12).astype("float32"), device=needle_device)
    np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())
    for name, t in other.state_dict().items():
        assert t.dtype == "float32" and t.device == needle_device, name


def _train(model, opt, loader, epochs, stop_after=None, start_epoch=0):
    """Train; with ``stop_after`` return the training state after that many batches."""
    loss_fn, done = nn.SoftmaxLoss(), 0
    model.train()
    for epoch in range(start_epoch, epochs):
        for X, y in loader:
            opt.reset_grad()
            loss_fn(model(X), y).backward()
            opt.step()
            done += 1
            if done == stop_after:
                return checkpoint.training_state(model, opt, epoch=epoch, batch=loader.batch_index, order=loader.order)
    return None


@pytest.mark.parametrize("opt_name", ["adam", "sgd"])
def test_resume_mid_epoch_is_bit_identical(needle_device, tmp_path, opt_name):
    rng = np.random.default_rng(0)
    data = ndl.data.NDArrayDataset(rng.standard_normal((50, 12)).astype("float32"), rng.integers(0, 10, 50))

    def make(seed):
        model = seeded_mlp_resnet(needle_device, seed)  # has Dropout and BatchNorm: RNG and buffers matter
        opt = (ndl.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.01) if opt_name == "adam"
               else ndl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
        return model, opt, ndl.data.DataLoader(data, batch_size=8, shuffle=True, device=needle_device)

    reference, opt, loader = make(0)
    _train(reference, opt, loader, epochs=2)

    model, opt, loader = make(0)
    state = _train(model, opt, loader, epochs=2, stop_after=4)
    ndl.save(state, tmp_path / "ckpt.npz")

    np.random.seed(123)  # a fresh process: other weights, other RNG state
    model, opt, loader = make(5)
    position = checkpoint.restore_training_state(ndl.load(tmp_path / "ckpt.npz"), model, opt)
    assert position["epoch"] == 0 and position["batch"] == 4
    loader.resume(position["order"], position["batch"])
    _train(model, opt, loader, epochs=2, start_epoch=position["epoch"])
    for (name, a), (_, b) in zip(reference.state_dict().items(), model.state_dict().items(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
