"""copy.copy / copy.deepcopy / pickle of NDArrays and Tensors on every device.

Device buffers (pyopencl Buffers, pybind11 arrays) are not picklable, so NDArray
pickles its values + dtype + device name and copies through the device's own
``compact`` kernel; these tests check values, independence of the buffers, the
device kept, views, Tensors, and loading onto another device (``map_location``).
"""

from __future__ import annotations

import copy
import pickle

import needle as ndl
import numpy as np
import pytest
from needle import backend_ndarray as nd



def _host(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _roundtrip(obj):
    return pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


@pytest.mark.parametrize("how", ["copy", "deepcopy"])
def test_copy_has_equal_values_and_its_own_buffer(needle_device, how):
    host = _host((3, 4))
    a = nd.array(host, device=needle_device)
    b = getattr(copy, how)(a)
    assert b.device is a.device  # the same Device object, not a clone of it
    assert (b.shape, b.dtype) == (a.shape, a.dtype)
    np.testing.assert_array_equal(b.numpy(), host)
    b[1, 2] = 100.0
    b[0, :] = 7.0
    np.testing.assert_array_equal(a.numpy(), host)  # the original is untouched
    expected = host.copy()
    expected[1, 2], expected[0, :] = 100.0, 7.0
    np.testing.assert_array_equal(b.numpy(), expected)


def test_deepcopy_of_a_view_is_a_compact_copy_of_its_values(needle_device):
    host = _host((4, 6), seed=1)
    a = nd.array(host, device=needle_device)
    for view, ref in (
        (a.permute((1, 0)), host.T),
        (a[1:4, ::2], host[1:4, ::2]),
        (nd.array(host[0], device=needle_device).broadcast_to((3, 6)), np.broadcast_to(host[0], (3, 6))),
    ):
        b = copy.deepcopy(view)
        assert b.is_compact() and b.shape == ref.shape and b.device is needle_device
        np.testing.assert_array_equal(b.numpy(), ref)
        b.fill(-1.0)
        np.testing.assert_array_equal(a.numpy(), host)


def test_deepcopy_keeps_aliasing_of_the_same_object(needle_device):
    a = nd.array(_host((2, 2)), device=needle_device)
    pair = copy.deepcopy([a, a])
    assert pair[0] is pair[1] and pair[0] is not a


def test_pickle_roundtrip_keeps_values_shape_dtype_device(needle_device):
    host = _host((2, 3, 5), seed=2)
    a = nd.array(host, device=needle_device)
    b = _roundtrip(a)
    assert isinstance(b, nd.NDArray)
    assert (b.shape, b.dtype, b.device) == (a.shape, a.dtype, a.device)
    assert b.device is needle_device  # looked up by name: the registry's one device
    np.testing.assert_array_equal(b.numpy(), host)
    b[0, 0, 0] = 42.0
    assert a.numpy()[0, 0, 0] == host[0, 0, 0]


@pytest.mark.parametrize("shape", [(), (0, 3), (1,), (7, 1, 2)])
def test_pickle_roundtrip_of_scalars_and_empty_arrays(needle_device, shape):
    host = _host(shape, seed=3)
    b = _roundtrip(nd.array(host, device=needle_device))
    assert b.shape == shape and b.device is needle_device
    np.testing.assert_array_equal(b.numpy(), host)


def test_pickle_of_a_transposed_view(needle_device):
    host = _host((3, 5), seed=4)
    view = nd.array(host, device=needle_device).permute((1, 0))
    assert not view.is_compact()
    b = _roundtrip(view)
    assert b.shape == (5, 3) and b.is_compact() and b.device is needle_device
    np.testing.assert_array_equal(b.numpy(), host.T)
    np.testing.assert_array_equal((b + 1.0).numpy(), host.T + np.float32(1.0))  # usable on its device


def test_float64_pickles_as_float64_where_the_device_holds_it(needle_device):
    if "float64" not in needle_device.dtypes:
        pytest.skip(f"{needle_device!r} holds only {needle_device.dtypes}")
    host = np.random.default_rng(5).standard_normal((2, 3))
    b = _roundtrip(nd.array(host, dtype="float64", device=needle_device))
    assert b.dtype == "float64"
    np.testing.assert_array_equal(b.numpy(), host)


def test_tensor_deepcopy_keeps_requires_grad_data_and_device(needle_device):
    host = _host((3, 2), seed=6)
    for requires_grad in (True, False):
        t = ndl.Tensor(host, device=needle_device, requires_grad=requires_grad)
        c = copy.deepcopy(t)
        assert c.requires_grad is requires_grad and c.is_leaf()
        assert c.device is needle_device and c.dtype == t.dtype
        np.testing.assert_array_equal(c.numpy(), host)
        assert c.realize_cached_data()._handle is not t.realize_cached_data()._handle
    # the copy is a working leaf of its own graph
    c = copy.deepcopy(ndl.Tensor(host, device=needle_device))
    (c * c).sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), 2 * host, rtol=1e-6)


def test_tensor_pickle_roundtrip(needle_device):
    host = _host((4,), seed=7)
    t = ndl.Tensor(host, device=needle_device, requires_grad=True)
    c = _roundtrip(t)
    assert isinstance(c, ndl.Tensor) and c.requires_grad and c.device is needle_device
    np.testing.assert_array_equal(c.numpy(), host)


def test_map_location_loads_onto_another_device(needle_device):
    host = _host((2, 3), seed=8)
    payload = pickle.dumps({"w": nd.array(host, device=needle_device), "t": ndl.Tensor(host, device=needle_device)})
    target = ndl.cpu_numpy()
    for location in (target, "cpu_numpy", {needle_device.name: "cpu_numpy"}):
        with nd.map_location(location):
            loaded = pickle.loads(payload)
        assert loaded["w"].device is target and loaded["t"].device is target
        np.testing.assert_array_equal(loaded["w"].numpy(), host)
        np.testing.assert_array_equal(loaded["t"].numpy(), host)
    # outside the block (and for devices a mapping does not name) arrays load where they were saved
    with nd.map_location({"no_such_type": "cpu_numpy"}):
        assert pickle.loads(payload)["w"].device is needle_device
    assert pickle.loads(payload)["w"].device is needle_device


def test_device_copies_are_the_device_and_pickle_by_name(needle_device):
    dev = needle_device
    assert copy.copy(dev) is dev and copy.deepcopy(dev) is dev
    assert pickle.loads(pickle.dumps(dev)) is ndl.device(dev.canonical)
    holder = {"device": dev, "x": ndl.Tensor([1.0, 2.0], device=dev)}
    clone = copy.deepcopy(holder)
    assert clone["device"] is dev and clone["x"].device is dev
