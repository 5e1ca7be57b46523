"""State dicts, ndl.save / ndl.load, and bit-identical resumption of training."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest
from needle.apps.mlp_resnet import MLPResNet

from needle_nn import checkpoint


def _model(dev, seed):
    np.random.seed(seed)
    return MLPResNet(12, 8, num_blocks=2, device=dev)


def test_state_dict_keys_hold_parameters_and_buffers(needle_device):
    model = _model(needle_device, 0)
    state = model.state_dict()
    assert "modules.0.weight" in state and "modules.4.bias" in state
    assert "modules.2.modules.0.fn.modules.1.running_mean" in state
    assert "modules.3.modules.0.fn.modules.5.running_var" in state
    assert len(state) == len(model.parameters()) + 2 * 4  # 4 BatchNorms, 2 buffers each
    assert all(isinstance(v, ndl.Tensor) for v in state.values())


def test_save_load_roundtrip_restores_outputs(needle_device, tmp_path):
    model = _model(needle_device, 0)
    model(ndl.Tensor(np.random.randn(6, 12).astype("float32"), device=needle_device))  # move running stats
    ndl.save(model.state_dict(), tmp_path / "m.npz")
    other = _model(needle_device, 1)
    params_before = other.parameters()
    other.load_state_dict(ndl.load(tmp_path / "m.npz"))
    assert other.parameters() == params_before  # loaded in place: optimisers keep their references
    model.eval()
    other.eval()
    x = ndl.Tensor(np.random.randn(3, 12).astype("float32"), device=needle_device)
    np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())
    for name, t in other.state_dict().items():
        assert t.dtype == "float32" and t.device == needle_device, name


def test_strict_loading_reports_missing_unexpected_and_shapes():
    model = _model(None, 0)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    broken = dict(state)
    del broken["modules.0.bias"]
    broken["extra.weight"] = np.zeros(3)
    with pytest.raises(KeyError, match=r"missing keys: \['modules.0.bias'\].*unexpected keys: \['extra.weight'\]"):
        model.load_state_dict(broken)
    model.load_state_dict(broken, strict=False)  # tolerated when asked
    wrong = dict(state)
    wrong["modules.0.weight"] = np.zeros((12, 9), dtype=np.float32)
    with pytest.raises(KeyError, match=r"modules.0.weight: checkpoint has shape \(12, 9\), model has \(12, 8\)"):
        model.load_state_dict(wrong)


def test_save_load_nested_values_without_pickle(tmp_path):
    obj = {"a": {"b": np.arange(3), "c": 2.5, "name": "adam"}, "empty": {}, "n": 7}
    checkpoint.save(obj, tmp_path / "x.npz")
    with np.load(tmp_path / "x.npz", allow_pickle=False) as npz:  # plain arrays only
        assert "a/b" in npz.files
    back = checkpoint.load(tmp_path / "x.npz")
    np.testing.assert_array_equal(back["a"]["b"], np.arange(3))
    assert back["a"]["c"] == 2.5 and back["a"]["name"] == "adam" and back["n"] == 7 and back["empty"] == {}


def test_save_rejects_objects_and_load_reports_bad_files(tmp_path):
    with pytest.raises(TypeError, match="no pickled objects"):
        ndl.save({"f": object()}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="expects a dict"):
        ndl.save([1, 2], tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match=r"nope\.npz.*written by ndl.save"):
        ndl.load(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"bad\.npz.*is not a needle checkpoint.*an \.npz file written by ndl.save"):
        ndl.load(tmp_path / "bad.npz")


def test_load_never_suggests_unpickling(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros(3))
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    (tmp_path / "garbage.npz").write_bytes(b"just text")
    (tmp_path / "pickle.npz").write_bytes(b"\x80\x04\x95 a pickle")
    ndl.save({"w": np.ones(50)}, tmp_path / "good.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "good.npz").read_bytes()[:100])
    cases = {"one.npy": "single .npy array", "objects.npz": "entry 'x' holds pickled Python objects",
             "garbage.npz": "not an .npz (zip) archive", "pickle.npz": "not an .npz (zip) archive",
             "cut.npz": "damaged or truncated"}
    for name, why in cases.items():
        with pytest.raises(checkpoint.CheckpointError) as info:
            ndl.load(tmp_path / name)
        text = str(info.value)
        assert "is not a needle checkpoint" in text and why in text, text
        assert "allow_pickle" not in text and "pickle.load" not in text and "unsafe" not in text, text


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
        model = _model(needle_device, seed)  # has Dropout and BatchNorm: RNG and buffers matter
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


def test_restore_rejects_a_plain_state_dict():
    model = _model(None, 0)
    with pytest.raises(KeyError, match="not a training checkpoint"):
        checkpoint.restore_training_state(model.state_dict(), model)
