"""needle.apps: the course's simple_ml, mlp_resnet and models modules."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest
from needle.apps import mlp_resnet, models, simple_ml


def _n_params(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters())


def test_mlp_resnet_structure_and_size(needle_device):
    model = mlp_resnet.MLPResNet(784, 100, num_blocks=3, device=needle_device)
    assert _n_params(model) == 110_860
    assert isinstance(model, nn.Sequential) and len(model.modules) == 6
    block = model.modules[2]
    inner = block.modules[0].fn.modules
    assert [type(m).__name__ for m in inner] == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear", "BatchNorm1d"]
    assert inner[0].weight.shape == (100, 50) and inner[3].p == 0.1
    assert model.modules[2] is not model.modules[3]  # distinct blocks
    ln = mlp_resnet.MLPResNet(10, 8, num_blocks=1, norm=nn.LayerNorm1d, drop_prob=0.0)
    assert isinstance(ln.modules[2].modules[0].fn.modules[1], nn.LayerNorm1d)


def test_mlp_resnet_forward_matches_numpy(needle_device):
    np.random.seed(0)
    model = mlp_resnet.MLPResNet(12, 8, num_blocks=2, device=needle_device)
    model.eval()
    x = np.random.randn(5, 12).astype("float32")

    def lin(layer, h):
        return h @ layer.weight.numpy() + layer.bias.numpy()

    def bn(layer, h):
        return (h - layer.running_mean.numpy()) / np.sqrt(layer.running_var.numpy() + layer.eps)

    h = np.maximum(lin(model.modules[0], x), 0)
    for block in model.modules[2:4]:
        f = block.modules[0].fn.modules
        z = bn(f[5], lin(f[4], np.maximum(bn(f[1], lin(f[0], h)), 0)))
        h = np.maximum(z + h, 0)
    expected = lin(model.modules[4], h)
    np.testing.assert_allclose(model(ndl.Tensor(x, device=needle_device)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_resnet9_has_431946_parameters_and_runs(needle_device):
    model = models.ResNet9(device=needle_device)
    assert _n_params(model) == 431_946
    x = ndl.Tensor(np.random.rand(2, 3, 32, 32).astype("float32"), device=needle_device)
    assert model(x).shape == (2, 10)


@pytest.mark.parametrize("seq_model", ["rnn", "lstm"])
def test_language_model_shapes(needle_device, seq_model):
    lm = models.LanguageModel(6, 11, 5, num_layers=2, seq_model=seq_model, device=needle_device)
    x = ndl.Tensor(np.random.randint(0, 11, (4, 3)), device=needle_device)
    logits, h = lm(x)
    assert logits.shape == (12, 11)
    if seq_model == "lstm":
        assert h[0].shape == h[1].shape == (2, 3, 5)
    else:
        assert h.shape == (2, 3, 5)
    logits2, _ = lm(x, h)
    assert logits2.shape == (12, 11)
    with pytest.raises(ValueError, match="'rnn' or 'lstm'"):
        models.LanguageModel(2, 3, 4, seq_model="gru")


def test_softmax_loss_and_loss_err(needle_device):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((5, 4)).astype("float32")
    y = rng.integers(0, 4, 5)
    onehot = np.eye(4, dtype="float32")[y]
    expected = np.mean(np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(5), y])
    got = simple_ml.softmax_loss(ndl.Tensor(Z, device=needle_device), ndl.Tensor(onehot, device=needle_device))
    np.testing.assert_allclose(float(got.numpy()), expected, rtol=1e-5)
    loss, err = simple_ml.loss_err(ndl.Tensor(Z, device=needle_device), y)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert err == np.mean(Z.argmax(axis=1) != y)


def test_nn_epoch_matches_numpy_sgd(needle_device):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((7, 5)).astype("float32")
    y = rng.integers(0, 3, 7)
    W1 = rng.standard_normal((5, 4)).astype("float32") / 2
    W2 = rng.standard_normal((4, 3)).astype("float32") / 2
    t1, t2 = simple_ml.nn_epoch(X, y, ndl.Tensor(W1, device=needle_device), ndl.Tensor(W2, device=needle_device),
                                lr=0.2, batch=3)
    w1, w2 = W1.astype(np.float64), W2.astype(np.float64)
    for s in range(0, 7, 3):
        xb, yb = X[s : s + 3], y[s : s + 3]
        a = xb @ w1
        h = np.maximum(a, 0)
        z = h @ w2
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        dz = (p - np.eye(3)[yb]) / len(yb)
        g2 = h.T @ dz
        g1 = xb.T @ ((dz @ w2.T) * (a > 0))
        w1, w2 = w1 - 0.2 * g1, w2 - 0.2 * g2
    np.testing.assert_allclose(t1.numpy(), w1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(t2.numpy(), w2, rtol=1e-4, atol=1e-5)
    assert t1.dtype == "float32"


def test_epoch_averages_loss_over_samples(needle_device):
    np.random.seed(0)
    X = np.random.randn(7, 6).astype("float32")
    y = np.random.randint(0, 3, 7)
    model = nn.Sequential(nn.Linear(6, 3, device=needle_device))
    loader = ndl.data.DataLoader(ndl.data.NDArrayDataset(X, y), batch_size=4, device=needle_device)
    err, loss = mlp_resnet.epoch(loader, model)
    z = X @ model.modules[0].weight.numpy() + model.modules[0].bias.numpy()
    zmax = z.max(axis=1, keepdims=True)
    per_sample = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0] - z[np.arange(7), y]
    np.testing.assert_allclose(loss, per_sample.mean(), rtol=1e-5)
    assert err == pytest.approx(np.mean(z.argmax(axis=1) != y))
    assert not model.training  # evaluation runs in eval mode


def test_cifar10_helpers(needle_device):
    np.random.seed(0)
    X = np.random.rand(10, 3, 4, 4).astype("float32")
    y = np.random.randint(0, 10, 10)
    loader = ndl.data.DataLoader(ndl.data.NDArrayDataset(X, y), batch_size=4, device=needle_device)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 10, device=needle_device))
    acc, loss = simple_ml.train_cifar10(model, loader, n_epochs=2, lr=0.01)
    assert 0 <= acc <= 1 and np.isfinite(loss)
    eval_acc, eval_loss = simple_ml.evaluate_cifar10(model, loader)
    again = simple_ml.epoch_general_cifar10(loader, model, nn.SoftmaxLoss(), None)
    assert (eval_acc, eval_loss) == again


def test_ptb_helpers(needle_device):
    data = ndl.data.batchify(list(np.random.default_rng(0).integers(0, 9, 200)), 4)
    lm = models.LanguageModel(5, 9, 6, seq_model="lstm", device=needle_device)
    acc, loss = simple_ml.train_ptb(lm, data, seq_len=10, n_epochs=2, lr=1.0, clip=1.0, device=needle_device)
    assert 0 <= acc <= 1 and np.isfinite(loss)
    eval_acc, eval_loss = simple_ml.evaluate_ptb(lm, data, seq_len=10, device=needle_device)
    assert 0 <= eval_acc <= 1 and np.isfinite(eval_loss) and not lm.training
