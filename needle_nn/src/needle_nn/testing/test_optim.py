"""SGD and Adam against NumPy simulations of the documented update rules."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest
from needle import autograd


def _setup(dev, seed=0):
    rng = np.random.default_rng(seed)
    w0 = [rng.standard_normal((3, 4)).astype("float32"), rng.standard_normal((4,)).astype("float32")]
    C = [rng.standard_normal(w.shape).astype("float32") for w in w0]
    params = [nn.Parameter(ndl.Tensor(w, device=dev)) for w in w0]
    consts = [ndl.Tensor(c, device=dev, requires_grad=False) for c in C]
    return w0, C, params, consts


def _loss(params, consts):
    # f(w) = sum(w*c) + sum(w*w)/2  =>  grad = c + w
    total = None
    for p, c in zip(params, consts, strict=True):
        term = (p * c).sum() + (p * p).sum() * 0.5
        total = term if total is None else total + term
    return total


def _run(opt, params, consts, steps):
    for _ in range(steps):
        opt.reset_grad()
        _loss(params, consts).backward()
        opt.step()


def _fused_variants(dev, name):
    return [True, False] if getattr(dev, name, None) is not None else [False]


@pytest.mark.parametrize("momentum,wd", [(0.0, 0.0), (0.9, 0.0), (0.5, 0.01)])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "fallback"])
def test_sgd_trajectory(needle_device, monkeypatch, momentum, wd, fused):
    if fused and needle_device.sgd_update is None:
        pytest.skip(f"{needle_device} has no sgd_update kernel")
    if not fused:
        monkeypatch.setattr(needle_device, "sgd_update", None)
    w0, C, params, consts = _setup(needle_device)
    _run(ndl.optim.SGD(params, lr=0.1, momentum=momentum, weight_decay=wd), params, consts, 5)
    for w, c, p in zip(w0, C, params, strict=True):
        w, u = w.astype(np.float64), np.zeros_like(w, dtype=np.float64)
        for _ in range(5):
            g = c + w + wd * w
            u = momentum * u + (1 - momentum) * g
            w = w - 0.1 * u
        np.testing.assert_allclose(p.numpy(), w, rtol=1e-5, atol=1e-6)
        assert p.dtype == "float32"


@pytest.mark.parametrize("wd", [0.0, 0.01])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "fallback"])
def test_adam_trajectory(needle_device, monkeypatch, wd, fused):
    if fused and needle_device.adam_update is None:
        pytest.skip(f"{needle_device} has no adam_update kernel")
    if not fused:
        monkeypatch.setattr(needle_device, "adam_update", None)
    w0, C, params, consts = _setup(needle_device, seed=1)
    opt = ndl.optim.Adam(params, lr=0.01, beta1=0.8, beta2=0.99, eps=1e-8, weight_decay=wd)
    _run(opt, params, consts, 6)
    assert opt.t == 6
    for w, c, p in zip(w0, C, params, strict=True):
        w = w.astype(np.float64)
        m, v = np.zeros_like(w), np.zeros_like(w)
        for t in range(1, 7):
            g = c + w + wd * w
            m = 0.8 * m + 0.2 * g
            v = 0.99 * v + 0.01 * g**2
            w = w - 0.01 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-8)
        np.testing.assert_allclose(p.numpy(), w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [lambda ps: ndl.optim.SGD(ps, lr=np.float64(0.1), momentum=np.float64(0.9),
                                                           weight_decay=np.float64(0.01)),
                                  lambda ps: ndl.optim.Adam(ps, lr=np.float64(0.1), weight_decay=np.float64(0.01))],
                         ids=["sgd", "adam"])
def test_step_builds_no_graph_keeps_grad_and_dtype(needle_device, make):
    _, _, params, consts = _setup(needle_device)
    opt = make(params)
    _run(opt, params, consts, 1)  # optimiser state exists from here on
    opt.reset_grad()
    _loss(params, consts).backward()
    grads = [p.grad.numpy().copy() for p in params]
    grad_objects = [p.grad for p in params]
    before = autograd.TENSOR_COUNTER
    opt.step()
    assert autograd.TENSOR_COUNTER == before  # no Tensor created by the update
    for p, g, obj in zip(params, grads, grad_objects, strict=True):
        assert p.grad is obj
        np.testing.assert_array_equal(p.grad.numpy(), g)
        assert p.dtype == "float32" and p.op is None and p.is_leaf()


def test_reset_grad_and_missing_grads(needle_device):
    _, _, params, consts = _setup(needle_device)
    opt = ndl.optim.Adam(params)
    before = params[1].numpy().copy()
    opt.reset_grad()
    (params[0] * consts[0]).sum().backward()  # params[1] gets no gradient
    opt.step()
    np.testing.assert_array_equal(params[1].numpy(), before)
    opt.reset_grad()
    assert all(p.grad is None for p in params)


def test_clip_grad_norm(needle_device):
    _, C, params, consts = _setup(needle_device)
    opt = ndl.optim.SGD(params, lr=0.1)
    opt.reset_grad()
    _loss(params, consts).backward()
    old = [p.grad for p in params]
    raw = [p.grad.numpy().astype(np.float64) for p in params]
    norm = np.sqrt(sum((g**2).sum() for g in raw))
    returned = opt.clip_grad_norm(max_norm=0.25)
    np.testing.assert_allclose(returned, norm, rtol=1e-5)
    coef = 0.25 / (norm + 1e-6)
    for p, g, o in zip(params, raw, old, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(o.numpy(), g, rtol=1e-6)  # the old gradient tensor was not modified
    ndl.optim.clip_grad_norm(params, max_norm=100.0)  # already small: unchanged
    for p, g in zip(params, raw, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-5, atol=1e-7)


def test_optimizer_state_dict_roundtrip(needle_device):
    model = nn.Sequential(nn.Linear(3, 2, device=needle_device))
    x = ndl.Tensor(np.random.randn(4, 3).astype("float32"), device=needle_device)
    opt = ndl.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(2):
        opt.reset_grad()
        model(x).sum().backward()
        opt.step()
    state = opt.state_dict(model)
    assert sorted(state) == ["m.modules.0.bias", "m.modules.0.weight", "t", "v.modules.0.bias", "v.modules.0.weight"]
    fresh = ndl.optim.Adam(model.parameters(), lr=0.01)
    fresh.load_state_dict(state, model)
    assert fresh.t == 2
    for p in model.parameters():
        np.testing.assert_array_equal(fresh.m[p].numpy(), opt.m[p].numpy())
    with pytest.raises(KeyError, match="unexpected keys"):
        fresh.load_state_dict({"u.modules.0.weight": np.zeros((3, 2))}, model)
