"""Notebook reloads: models, optimisers and data keep working after any needle module is re-executed.

IPython's ``%autoreload 2`` re-runs edited modules (after clearing their dict);
``importlib.reload`` re-runs them in place. Every module of needle_core and
needle_nn is reloaded one by one and then all together, in a fresh interpreter,
and after each reload a model built before it and one built after it must still
list their parameters, train (weights change) and pass ``isinstance`` checks.
"""

from __future__ import annotations

import importlib.util

import pytest
from registry_support import isolated_env, run_python

SCRIPT = """
import importlib, pkgutil, sys
import numpy as np
import needle as ndl
import needle_core, needle_nn
import needle.nn as nn, needle.optim as optim, needle.data as data
from needle_nn.cli import train  # the CLI modules are reloaded too

def ipython_style(module):  # what IPython's superreload does before reloading
    name, loader, spec = module.__name__, module.__loader__, module.__spec__
    path = getattr(module, "__path__", None)
    module.__dict__.clear()
    module.__dict__.update(__name__=name, __loader__=loader, __spec__=spec)
    if path is not None:
        module.__path__ = path
    return importlib.reload(module)

reload = {reload}
MODULES = sorted(
    info.name
    for pkg in (ndl, needle_core, needle_nn)
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")
)
for name in MODULES:
    importlib.import_module(name)
MODULES = ["needle", "needle_core", "needle_nn"] + MODULES
dev = ndl.cpu_numpy()

def build():
    np.random.seed(0)
    return nn.Sequential(nn.Linear(4, 8, device=dev), nn.Tanh(), nn.BatchNorm1d(8, device=dev),
                         nn.Residual(nn.Linear(8, 8, device=dev)), nn.Dropout(0.1), nn.Linear(8, 3, device=dev))

X = np.random.rand(12, 4).astype("float32")
y = (np.arange(12) % 3).astype("uint8")

def check(model, old_opt_class, where):
    nn_now, optim_now, data_now = (sys.modules["needle_nn." + m] for m in ("nn", "optim", "data"))
    params = model.parameters()
    assert len(params) == N_PARAMS, f"{{where}}: parameters() lists {{len(params)}} tensors"
    assert isinstance(model, nn_now.Module) and isinstance(model, OLD["Module"]), where
    assert isinstance(model, nn_now.Sequential) and isinstance(model, OLD["Sequential"]), where
    assert all(isinstance(p, nn_now.Parameter) and isinstance(p, OLD["Parameter"]) for p in params), where
    assert all(isinstance(p, ndl.Tensor) for p in params), where
    loader = data_now.DataLoader(data_now.NDArrayDataset(X, y), batch_size=6, shuffle=True, device=dev)
    assert isinstance(loader.dataset, OLD["Dataset"]) and isinstance(OLD_DATASET, data_now.Dataset), where
    assert isinstance(loader, OLD["DataLoader"]) and isinstance(OLD_LOADER, data_now.DataLoader), where
    for opt_class in (old_opt_class, optim_now.Adam, optim_now.SGD):
        opt = opt_class(model.parameters(), lr=0.01)
        assert isinstance(opt, OLD["Optimizer"]) and isinstance(opt, optim_now.Optimizer), where
        before = [p.numpy().copy() for p in model.parameters()]
        model.train()
        for xb, yb in loader:
            opt.reset_grad()
            nn_now.SoftmaxLoss()(model(xb), yb).backward()
            opt.step()
        changed = sum(not np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters()))
        assert changed == len(before), f"{{where}}: {{opt_class.__name__}} changed {{changed}}/{{len(before)}} weights"
    assert model.state_dict().keys() == build().state_dict().keys(), where

old_model, old_adam = build(), optim.Adam
OLD = dict(Module=nn.Module, Sequential=nn.Sequential, Parameter=nn.Parameter, Dataset=data.Dataset,
           DataLoader=data.DataLoader, Optimizer=optim.Optimizer)
OLD_DATASET = data.NDArrayDataset(X, y)
OLD_LOADER = data.DataLoader(OLD_DATASET, batch_size=6)
N_PARAMS = len(old_model.parameters())
assert N_PARAMS == 8, N_PARAMS
ALL = {{"all (packages first)": MODULES, "all (submodules first)": MODULES[::-1]}}
for name in MODULES + list(ALL):
    for module in ALL.get(name, [name]):
        reload(sys.modules[module])
    check(old_model, old_adam, f"model built before reloading {{name}}")
    check(build(), old_adam, f"model built after reloading {{name}}")
print("reloaded", len(MODULES), "modules")
"""


_NO_IPYTHON = pytest.mark.skipif(importlib.util.find_spec("IPython") is None, reason="IPython is not installed")


@pytest.mark.parametrize("style", ["importlib.reload", "ipython_style", pytest.param("superreload", marks=_NO_IPYTHON)])
def test_models_optimisers_and_data_survive_reloading_every_module(style):
    code = SCRIPT.format(reload=style)
    if style == "superreload":  # IPython's own %autoreload 2 machinery
        code = "from IPython.extensions.autoreload import superreload\n" + code
    proc = run_python(code, isolated_env())
    assert "reloaded" in proc.stdout
    assert "Exception ignored" not in proc.stderr, proc.stderr[-2000:]  # e.g. a __del__ failing mid-reload
