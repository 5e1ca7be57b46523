"""Pickles of NDArrays saved on devices this machine lacks: the error says what to do, map_location
loads them elsewhere (the per-device copy/pickle tests are needle.testing.test_ndarray_copy_pickle)."""

from __future__ import annotations

import pickle

import needle as ndl
import numpy as np
import pytest
from needle import backend_ndarray as nd

from needle_core.backend_ndarray.pickling import rebuild_ndarray


class _SavedElsewhere:
    """Pickles like an NDArray saved on a device this machine does not have."""

    def __init__(self, device_name: str) -> None:
        self.device_name = device_name

    def __reduce__(self):
        return rebuild_ndarray, (np.arange(3, dtype=np.float32), "float32", self.device_name)


def test_loading_on_a_missing_device_says_what_to_do():
    payload = pickle.dumps(_SavedElsewhere("no_such_device:0"))
    with pytest.raises(ValueError, match=r"no_such_device:0.*map_location\('cpu_numpy'\).*\.to\(device\)"):
        pickle.loads(payload)
    with nd.map_location("cpu_numpy"):
        loaded = pickle.loads(payload)
    assert loaded.device is ndl.cpu_numpy()
    np.testing.assert_array_equal(loaded.numpy(), np.arange(3, dtype=np.float32))


def test_loading_on_an_unavailable_index_keeps_the_registry_error_type():
    numpy_device = ndl.cpu_numpy()
    payload = pickle.dumps(_SavedElsewhere(f"{numpy_device.name}:99"))
    with pytest.raises(ndl.backends.DeviceUnavailableError, match=r"cpu_numpy:99.*map_location"):
        pickle.loads(payload)


def test_float64_maps_to_float32_on_a_float32_only_device():
    if "float64" not in ndl.cpu_numpy().dtypes:
        pytest.skip("cpu_numpy holds no float64")
    host = np.random.default_rng(9).standard_normal(3)
    payload = pickle.dumps(nd.array(host, dtype="float64", device=ndl.cpu_numpy()))
    narrow = next((d for d in ndl.all_devices() if d.enabled() and "float64" not in d.dtypes), None)
    if narrow is None:
        pytest.skip("no enabled float32-only device installed")
    with nd.map_location(narrow):
        loaded = pickle.loads(payload)
    assert loaded.device is narrow and loaded.dtype == "float32"
    np.testing.assert_array_equal(loaded.numpy(), host.astype(np.float32))
