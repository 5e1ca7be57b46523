"""DLPack: zero-copy exchange with NumPy and PyTorch on host backends, clear errors elsewhere."""

from __future__ import annotations

import gc
import weakref

import needle as ndl
import numpy as np
import pytest
from needle import backend_ndarray as nd


@pytest.fixture
def host_device(needle_device):
    if needle_device.__dict__.get("host_array") is None:
        pytest.skip(f"{needle_device!r} keeps its memory off the host (see test_device_memory_backends_refuse)")
    return needle_device


def _tensor(dev, shape=(3, 4)):
    return ndl.Tensor(np.arange(np.prod(shape), dtype="float32").reshape(shape), device=dev)


def test_numpy_shares_a_tensors_memory_both_ways(host_device):
    t = _tensor(host_device)
    assert t.__dlpack_device__() == (1, 0)
    a = np.from_dlpack(t)
    np.testing.assert_array_equal(a, np.arange(12).reshape(3, 4))
    a[0, 1] = 100.0  # numpy -> needle
    assert t.numpy()[0, 1] == 100.0
    t.realize_cached_data()[2, 3] = -7.0  # needle -> numpy
    assert a[2, 3] == -7.0


def test_views_export_with_their_strides_and_offset(host_device):
    arr = _tensor(host_device, (4, 6)).realize_cached_data()
    view = arr.permute((1, 0))[1:5:2, 1:]  # transposed, stepped, offset
    a = np.from_dlpack(view)
    expected = np.arange(24, dtype="float32").reshape(4, 6).T[1:5:2, 1:]
    np.testing.assert_array_equal(a, expected)
    assert a.strides == tuple(4 * s for s in view.strides)
    a[0, 0] = 50.0
    assert arr.numpy()[1, 1] == 50.0  # the view's first element is arr[1, 1]
    b = np.from_dlpack(arr.reshape((1, 24)).broadcast_to((3, 24)))  # stride 0
    assert b.strides[0] == 0 and b.shape == (3, 24)


def test_exported_memory_outlives_the_tensor(host_device):
    t = _tensor(host_device, (256, 256))
    a = np.from_dlpack(t)
    del t
    gc.collect()
    junk = [ndl.Tensor(np.full((256, 256), 9.0, dtype="float32"), device=host_device) for _ in range(8)]
    np.testing.assert_array_equal(a, np.arange(65536, dtype="float32").reshape(256, 256))
    del junk


def test_from_dlpack_shares_numpy_memory_both_ways(host_device):
    src = np.zeros((3, 5), dtype="float32")
    t = ndl.from_dlpack(src, device=host_device)
    assert isinstance(t, ndl.Tensor) and t.device == host_device and not t.requires_grad
    src[1, 2] = 4.0
    assert t.numpy()[1, 2] == 4.0
    t.realize_cached_data()[0, 0] = 3.0
    assert src[0, 0] == 3.0
    assert (t * 2).numpy()[1, 2] == 8.0  # ops read it like any array


def test_from_dlpack_honours_strided_views(host_device):
    base = np.arange(40, dtype="float32").reshape(5, 8)
    view = base[1:4, ::3]  # non-contiguous
    arr = nd.from_dlpack(view, device=host_device)
    np.testing.assert_array_equal(arr.numpy(), view)
    assert not arr.is_compact() and arr.strides == (8, 3)
    base[2, 3] = -1.0
    assert arr.numpy()[1, 1] == -1.0
    assert (arr + 1.0).numpy()[1, 1] == 0.0
    scalar = nd.from_dlpack(np.array(2.5, dtype="float32"), device=host_device)
    assert scalar.shape == () and float(scalar) == 2.5


def test_from_dlpack_rejects_what_it_cannot_share(host_device):
    reversed_view = np.arange(6, dtype="float32")[::-1]
    with pytest.raises(BufferError, match="negative or non-element.*copy=True"):
        nd.from_dlpack(reversed_view, device=host_device)
    copied = nd.from_dlpack(reversed_view, device=host_device, copy=True)
    np.testing.assert_array_equal(copied.numpy(), reversed_view)
    with pytest.raises(TypeError, match="floating-point"):
        nd.from_dlpack(np.arange(3), device=host_device)
    if "float64" not in host_device.dtypes:
        with pytest.raises(Exception, match="float64"):
            nd.from_dlpack(np.zeros(3), device=host_device)


def test_imported_memory_stays_alive_while_needle_holds_it(host_device):
    src = np.arange(10, dtype="float32")
    alive = weakref.ref(src)
    t = ndl.from_dlpack(src, device=host_device)
    del src
    gc.collect()
    assert alive() is not None  # the buffer holds the producer
    np.testing.assert_array_equal(t.numpy(), np.arange(10))
    del t
    gc.collect()
    assert alive() is None  # and lets go of it with the last needle reference


def test_round_trip_through_needle_keeps_sharing(host_device):
    t = _tensor(host_device)
    u = ndl.from_dlpack(t, device=host_device)
    u.realize_cached_data()[0, 0] = 42.0
    assert t.numpy()[0, 0] == 42.0


def test_device_memory_backends_refuse(needle_device):
    if needle_device.__dict__.get("host_array") is not None or needle_device.__dict__.get("dlpack_device"):
        pytest.skip(f"{needle_device!r} exports through DLPack")
    t = _tensor(needle_device)
    with pytest.raises(BufferError, match=r"cannot export its memory.*\.numpy\(\)"):
        np.from_dlpack(t)
    with pytest.raises(BufferError, match="cannot"):
        t.__dlpack_device__()
    with pytest.raises(BufferError, match="copy=False"):
        ndl.from_dlpack(np.zeros(3, dtype="float32"), device=needle_device, copy=False)
    copied = ndl.from_dlpack(np.ones(3, dtype="float32"), device=needle_device)  # copy=None copies
    np.testing.assert_array_equal(copied.numpy(), np.ones(3))


# -- PyTorch (skipped when it is not installed: CI test sessions do not install it) ------
def test_torch_shares_memory_both_ways(host_device):
    torch = pytest.importorskip("torch")
    t = _tensor(host_device)
    pt = torch.from_dlpack(t)
    assert pt.shape == (3, 4) and pt.dtype == torch.float32
    pt[1, 1] = 77.0
    assert t.numpy()[1, 1] == 77.0
    t.realize_cached_data()[0, 3] = -2.0
    assert float(pt[0, 3]) == -2.0
    del t
    gc.collect()
    assert float(pt[1, 1]) == 77.0  # torch keeps the buffer alive

    src = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    u = ndl.from_dlpack(src, device=host_device)
    src[2, 2] = 5.5
    assert u.numpy()[2, 2] == 5.5
    u.realize_cached_data()[0, 0] = 9.0
    assert float(src[0, 0]) == 9.0
    view = src.t()[1:]  # a strided torch view is honoured
    v = nd.from_dlpack(view, device=host_device)
    np.testing.assert_array_equal(v.numpy(), view.numpy())
    del src, view
    gc.collect()
    assert u.numpy()[2, 2] == 5.5


# -- device memory (kDLCUDA): the capsule is built by hand; checked here on host memory ----
class _Producer:
    """Exports an NDArray through the hand-built capsule with a chosen DLPack device."""

    def __init__(self, array, device=(1, 0)):
        self.array, self.device = array, device

    def __dlpack__(self, max_version=None, **_):
        from needle_core.backend_ndarray import _capsule

        return _capsule.export_device(self.array, self.device, max_version)

    def __dlpack_device__(self):
        return self.device


def test_hand_built_capsule_is_read_by_numpy_and_freed(host_device):
    from needle_core.backend_ndarray import _capsule

    t = _tensor(host_device, (3, 4))
    view = t.realize_cached_data().permute((1, 0))[1:, :]
    live = len(_capsule._LIVE)
    a = np.from_dlpack(_Producer(view))  # numpy asks for a versioned (writable) capsule
    np.testing.assert_array_equal(a, np.arange(12, dtype="float32").reshape(3, 4).T[1:])
    a[0, 0] = 99.0
    assert t.numpy()[0, 1] == 99.0
    assert len(_capsule._LIVE) == live + 1
    del a
    gc.collect()
    assert len(_capsule._LIVE) == live  # the consumer called the deleter


def test_cuda_style_export_describes_the_device_pointer(host_device):
    import ctypes

    from needle_core.backend_ndarray import _capsule

    arr = _tensor(host_device, (4, 6)).realize_cached_data()[1:3, 2:]
    live = len(_capsule._LIVE)
    for max_version, name, struct in ((None, b"dltensor", _capsule.DLManagedTensor),
                                      ((1, 0), b"dltensor_versioned", _capsule.DLManagedTensorVersioned)):
        capsule = _Producer(arr, (2, 3)).__dlpack__(max_version=max_version)
        get = ctypes.PyDLL(None).PyCapsule_GetPointer
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        managed = struct.from_address(get(capsule, name))
        t = managed.dl_tensor
        assert (t.device.device_type, t.device.device_id) == (2, 3)  # kDLCUDA, the device index
        assert t.data == arr._handle.ptr() and t.byte_offset == 4 * arr._offset
        assert [t.shape[i] for i in range(t.ndim)] == [2, 4]
        assert [t.strides[i] for i in range(t.ndim)] == [6, 1]
        assert (t.dtype.code, t.dtype.bits, t.dtype.lanes) == (2, 32, 1)
        del capsule, managed, t
        gc.collect()
    assert len(_capsule._LIVE) == live  # unconsumed capsules release what they kept alive


def test_a_device_with_the_dlpack_device_hook_exports_its_pointer(host_device, monkeypatch):
    """What the CUDA backend declares (``dlpack_device = (2, index)``) routes __dlpack__ to the capsule."""
    t = _tensor(host_device)
    monkeypatch.delitem(host_device.__dict__, "host_array")
    monkeypatch.setitem(host_device.__dict__, "dlpack_device", (2, 0))
    assert t.__dlpack_device__() == (2, 0)
    capsule = t.__dlpack__(max_version=(1, 0))
    assert "dltensor_versioned" in repr(capsule)
    with pytest.raises(BufferError, match="copy=True"):
        t.__dlpack__(copy=True)
    with pytest.raises(BufferError, match="not host memory"):
        ndl.from_dlpack(t, device="cpu_numpy")
