"""needle.data on this device: DataLoader batches and the language-model batching helpers."""

from __future__ import annotations

import needle as ndl
import numpy as np


def test_ndarray_dataset_and_loader_order(needle_device):
    X = np.arange(23 * 2, dtype=np.float32).reshape(23, 2)
    y = np.arange(23)
    ds = ndl.data.NDArrayDataset(X, y)
    assert len(ds) == 23 and ds[4][1] == 4
    loader = ndl.data.DataLoader(ds, batch_size=5, shuffle=True, device=needle_device)
    np.random.seed(0)
    batches = list(loader)
    np.random.seed(0)
    order = np.random.permutation(23)
    expected = np.array_split(order, range(5, 23, 5))
    assert [b[1].shape[0] for b in batches] == [5, 5, 5, 5, 3] and len(loader) == 5
    for (bx, by), idx in zip(batches, expected, strict=True):
        np.testing.assert_array_equal(by.numpy(), idx)
        np.testing.assert_array_equal(bx.numpy(), X[idx])
        assert isinstance(bx, ndl.Tensor) and bx.device == needle_device and not bx.requires_grad
    again = [b[1].numpy() for b in loader]  # a new epoch draws a new order
    assert not all(np.array_equal(a, b[1].numpy()) for a, b in zip(again, batches, strict=True))
    unshuffled = [b[1].numpy() for b in ndl.data.DataLoader(ds, batch_size=10)]
    np.testing.assert_array_equal(np.concatenate(unshuffled), y)


def test_batchify_and_get_batch(needle_device):
    data = list(range(23))
    batches = ndl.data.batchify(data, 4, device=needle_device, dtype="float32")
    assert batches.shape == (5, 4)
    np.testing.assert_array_equal(batches, np.arange(20).reshape(4, 5).T)
    X, y = ndl.data.get_batch(batches, 1, 3, device=needle_device)
    assert X.shape == (3, 4) and y.shape == (12,) and X.dtype == "float32"
    np.testing.assert_array_equal(X.numpy(), batches[1:4])
    np.testing.assert_array_equal(y.numpy(), batches[2:5].reshape(-1))
    X, y = ndl.data.get_batch(batches, 3, 3, device=needle_device)  # clipped at the end
    assert X.shape == (1, 4) and y.shape == (4,)
