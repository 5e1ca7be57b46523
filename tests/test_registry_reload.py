"""Reload safety: re-executing needle modules keeps one Tensor/Device world.

``importlib.reload`` re-runs a module in its existing dict; IPython's
``%autoreload 2`` (``superreload``) first clears that dict. Both are exercised in
fresh interpreters.
"""

from __future__ import annotations

import importlib.util

import pytest
from registry_support import isolated_env, run_python

RELOADED = [
    "needle_core._reload",
    "needle_core.hookspecs",
    "needle_core.device",
    "needle_core.autograd",
    "needle_core.registry.state",
    "needle_core.registry.records",
    "needle_core.registry.errors",
    "needle_core.registry",
    "needle_core.backend_ndarray",
    "needle_core.ops",
    "needle",
]

WORLD_SURVIVES = """
import importlib, sys, warnings
import numpy as np
import needle as ndl

def ipython_style(module):  # what IPython's superreload does before reloading
    name, loader = module.__name__, module.__loader__
    module.__dict__.clear()
    module.__dict__.update(__name__=name, __loader__=loader)
    return importlib.reload(module)

reload = {reload}
dev = ndl.cpu_numpy()
t = ndl.Tensor(np.arange(3, dtype="float32"), device=dev)
records = [str(r) for r in ndl.devices()]
for name in {modules!r}:
    reload(sys.modules[name])
assert isinstance(t, ndl.Tensor) and isinstance(t, ndl.autograd.Tensor), "Tensor class was duplicated"
assert isinstance(t, sys.modules["needle_core.autograd"].Tensor)
assert isinstance(dev, ndl.backends.Device) and isinstance(dev, sys.modules["needle_core.device"].Device)
assert ndl.cpu_numpy() is dev and ndl.device("numpy") is dev, "device was duplicated"
assert [str(r) for r in ndl.devices()] == records, "plugins were loaded twice"
u = ndl.Tensor([1.0, 2.0, 3.0], device=ndl.cpu_numpy(), dtype="float32")
assert type(u) is type(t)
np.testing.assert_allclose((t + u).numpy(), [1, 3, 5])
(t * u).sum().backward()
try:
    ndl.device("nope")
except ndl.backends.UnknownDeviceError:
    pass
"""


@pytest.mark.parametrize("style", ["importlib.reload", "ipython_style"])
def test_reloading_needle_modules_keeps_classes_and_devices(style):
    run_python(WORLD_SURVIVES.format(reload=style, modules=RELOADED), isolated_env())


@pytest.mark.skipif(importlib.util.find_spec("IPython") is None, reason="IPython is not installed")
def test_ipython_superreload_keeps_classes_and_devices():
    code = WORLD_SURVIVES.format(reload="superreload", modules=RELOADED)
    run_python("from IPython.extensions.autoreload import superreload\n" + code, isolated_env())


KEEP_V1 = """
from needle_core._reload import keep

class Base:
    def f(self):
        return 1

class Child(Base):
    __slots__ = ("x",)

    def f(self):
        return super().f() + 10

    def old_only(self):
        return "old"

REGISTRY = {}
keep(globals(), "Base", "Child", "REGISTRY")
"""

KEEP_V2 = (
    KEEP_V1.replace("return 1", "return 2")
    .replace("+ 10", "+ 200")
    .replace('def old_only(self):\n        return "old"', 'def new_only(self):\n        return "new"')
)


def test_keep_keeps_identity_and_takes_new_code(tmp_path):
    (tmp_path / "keep_demo.py").write_text(KEEP_V1)
    run_python(
        f"""
        import importlib, pathlib, sys
        sys.path.insert(0, {str(tmp_path)!r})
        import keep_demo
        c = keep_demo.Child(); c.x = 1
        keep_demo.REGISTRY["k"] = c
        assert c.f() == 11
        pathlib.Path({str(tmp_path / "keep_demo.py")!r}).write_text({KEEP_V2!r})
        for clear in (False, True):
            if clear:  # IPython style: the module dict is emptied first
                name, loader = keep_demo.__name__, keep_demo.__loader__
                keep_demo.__dict__.clear(); keep_demo.__dict__.update(__name__=name, __loader__=loader)
            importlib.reload(keep_demo)
            assert isinstance(c, keep_demo.Child) and isinstance(c, keep_demo.Base)
            assert c.f() == 202, c.f()  # new bodies, and super() still works
            assert c.new_only() == "new" and not hasattr(c, "old_only")
            assert keep_demo.REGISTRY == {{"k": c}}
            d = keep_demo.Child(); d.x = 2  # slots still work on new instances
        """,
        isolated_env(PYTHONDONTWRITEBYTECODE="1"),
    )
