"""Registry building blocks tested in-process: names, kernel tables, smoke check, Device."""

from __future__ import annotations

import itertools
import types

import numpy as np
import pytest
from needle_core.device import Device, DeviceUnavailableError, DisabledDevice
from needle_core.kernels import OPTIONAL_KERNELS, PRIMITIVE_KERNELS
from needle_core.registry.naming import canonical, parse, suggest
from needle_core.registry.table import build_table, missing_primitives, namespace_table, smoke, unknown_names


# -- names -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [("cpu", ("cpu", 0)), ("cuda:1", ("cuda", 1)), (" CUDA:0 ", ("cuda", 0)), ("cpu_numpy:12", ("cpu_numpy", 12))],
)
def test_parse_type_and_index(text, expected):
    assert parse(text) == expected
    assert canonical(*expected) == f"{expected[0]}:{expected[1]}"


@pytest.mark.parametrize("bad", ["cuda:x", ":1", "cuda:-1", "cuda:", ""])
def test_parse_rejects_bad_names_saying_what_is_expected(bad):
    with pytest.raises(ValueError, match="type:index"):
        parse(bad)


def test_parse_rejects_non_strings():
    with pytest.raises(TypeError, match="string"):
        parse(3)


def test_suggest_uses_close_matches():
    assert "'cuda'" in suggest("cdua", ["cuda", "cpu", "cpu_numpy"])
    assert "'cpu_numpy'" in suggest("cpu_nupmy", ["cuda", "cpu", "cpu_numpy"])
    assert suggest("zzzz", ["cuda", "cpu"]) == ""


def test_suggest_never_offers_the_name_itself():
    # a known but blocked plugin must not get "did you mean 'cpu'?" for 'cpu'
    assert "'cpu'" not in suggest("cpu", ["cpu", "cuda"])


# -- kernel tables -------------------------------------------------------------------
def _fn(tag):
    def kernel(*args):
        return tag

    return kernel


def test_namespace_table_reads_modules_objects_and_mappings():
    mod = types.ModuleType("m")
    mod.ewise_add, mod.matmul, mod.not_a_kernel = _fn("a"), _fn("m"), _fn("x")
    obj = types.SimpleNamespace(ewise_add=mod.ewise_add, matmul=mod.matmul, conv2d_nhwc=None)
    for ns in (mod, obj, {"ewise_add": mod.ewise_add, "matmul": mod.matmul, "not_a_kernel": 1}):
        assert namespace_table(ns) == {"ewise_add": mod.ewise_add, "matmul": mod.matmul}


def test_missing_primitives_lists_every_absent_name():
    table = {n: _fn(n) for n in PRIMITIVE_KERNELS if n not in ("matmul", "fill")}
    assert missing_primitives(table) == [n for n in PRIMITIVE_KERNELS if n in ("matmul", "fill")]
    assert unknown_names(["matmul", "matmull", "ewise_foo"]) == ["ewise_foo", "matmull"]


def test_overrides_resolve_by_priority_then_name_never_by_order():
    own = {"matmul": _fn("own"), "ewise_add": _fn("own"), "ewise_mul": _fn("own")}
    contributions = [
        (5, "zeta", {"matmul": _fn("zeta")}, "pkg-zeta 1"),
        (5, "alpha", {"matmul": _fn("alpha")}, "pkg-alpha 2"),
        (3, "beta", {"matmul": _fn("beta"), "ewise_add": _fn("beta")}, "pkg-beta 3"),
        (0, "aaa", {"ewise_mul": _fn("aaa")}, "pkg-aaa 4"),  # ties with own kernels: own wins
        (1, "gamma", {"logsumexp": _fn("gamma")}, "pkg-gamma 5"),  # a slot the device lacks
    ]
    for order in itertools.permutations(contributions):
        table, sources = build_table(own, "own-dist 0.1", order)
        assert {k: f() for k, f in table.items()} == {
            "matmul": "alpha",
            "ewise_add": "beta",
            "ewise_mul": "own",
            "logsumexp": "gamma",
        }
        assert sources == {
            "matmul": "pkg-alpha 2",
            "ewise_add": "pkg-beta 3",
            "ewise_mul": "own-dist 0.1",
            "logsumexp": "pkg-gamma 5",
        }


def _numpy_namespace(add=np.add):
    """A complete kernel namespace over NumPy (flat float32 buffers)."""

    class Array:
        def __init__(self, size, dtype="float32"):
            self.array, self.size = np.empty(size, np.float32), size

        def ptr(self):
            return self.array.ctypes.data

    ns = {n: _fn(n) for n in PRIMITIVE_KERNELS}
    ns["Array"] = Array
    ns["from_numpy"] = lambda a, out: out.array.__setitem__(slice(None), a.reshape(-1))
    ns["to_numpy"] = lambda a, shape, strides, offset: np.lib.stride_tricks.as_strided(
        a.array[offset:], shape, [s * 4 for s in strides]
    ).copy()
    ns["ewise_add"] = lambda a, b, out: add(a.array, b.array, out=out.array)
    return ns


def test_smoke_passes_for_right_kernels_and_explains_wrong_ones():
    assert smoke(Device("good", 0, _numpy_namespace())) == ""
    problem = smoke(Device("bad", 0, _numpy_namespace(add=np.subtract)))
    assert "ewise_add gave" in problem and "expected [1.5, 2.0, 2.25]" in problem


# -- Device --------------------------------------------------------------------------
def test_kernel_table_is_plain_instance_attributes():
    ns = _numpy_namespace()
    dev = Device("good", 0, ns, providers={"ewise_add": "pkg 1"})
    assert type(dev).__getattribute__ is object.__getattribute__  # no per-access hook
    assert not hasattr(Device, "__getattr__")  # it would stop CPython specialising attribute loads
    assert vars(dev)["ewise_add"] is ns["ewise_add"]
    assert all(vars(dev)[n] is None for n in OPTIONAL_KERNELS)  # absent optional = None
    assert dev.kernel_source("ewise_add") == "pkg 1" and dev.kernel_source("conv2d_nhwc") is None


def test_install_kernels_rebuilds_in_place_and_rejects_missing_primitives():
    dev = Device("good", 0, _numpy_namespace())
    new_add = _fn("new")
    dev.install_kernels({**_numpy_namespace(), "ewise_add": new_add}, {"ewise_add": "fast 2"})
    assert dev.ewise_add is new_add and dev.kernel_source("ewise_add") == "fast 2"
    with pytest.raises(TypeError, match="matmul"):
        dev.install_kernels({k: v for k, v in _numpy_namespace().items() if k != "matmul"})


def test_disabled_device_explains_and_answers_hasattr():
    dev = Device("cuda", 0, None, reason="no NVIDIA driver found", hint="Install needle-backend-cuda.")
    assert not dev.enabled()
    with pytest.raises(DeviceUnavailableError, match="no NVIDIA driver found.*needle-backend-cuda.*cpu_numpy"):
        dev.Array(3)
    assert not hasattr(dev, "matmul_tiled")
    enabled = Device("cuda", 0, _numpy_namespace())
    enabled.disable("driver unloaded")
    assert not enabled.enabled() and "driver unloaded" in enabled.unavailable_message()
    assert isinstance(enabled, DisabledDevice) and not hasattr(enabled, "ewise_add")
    enabled.install_kernels(_numpy_namespace())  # same object comes back to life
    assert type(enabled) is Device and enabled.enabled() and callable(enabled.ewise_add)


def test_device_names_print_compare_and_hash_canonically():
    assert [repr(Device(n, i)) for n, i in [("cpu", 0), ("cuda", 0), ("cpu_numpy", 0), ("cuda", 1)]] == [
        "cpu()",
        "cuda()",
        "cpu_numpy()",
        "cuda(1)",
    ]
    assert repr(Device("opencl", 0)) == "device('opencl')" and repr(Device("opencl", 2)) == "device('opencl:2')"
    assert Device("cuda", 0) == Device("cuda", 0) and Device("cuda", 1) != Device("cuda", 0)
    assert len({Device("cuda", 0), Device("cuda", 0), Device("cuda", 1)}) == 2
