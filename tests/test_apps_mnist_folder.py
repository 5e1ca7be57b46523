"""needle.apps without a device: course-style imports, parse_mnist, train_mnist on a small folder
(the device tests are needle_nn.testing.test_apps)."""

from __future__ import annotations

import gzip

import numpy as np
from needle.apps import mlp_resnet, simple_ml


def _write_mnist(folder, prefix, n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    # learnable images: a bright column per class, plus noise
    images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    images[np.arange(n), :, labels * 2 + 3] = 255
    for name, magic, dims, payload in [(f"{prefix}-images-idx3-ubyte.gz", 2051, (n, 28, 28), images.tobytes()),
                                       (f"{prefix}-labels-idx1-ubyte.gz", 2049, (n,), labels.tobytes())]:
        with gzip.open(folder / name, "wb") as f:
            f.write(b"".join(int(v).to_bytes(4, "big") for v in (magic, *dims)) + payload)
    return images, labels


def test_simple_ml_is_importable_the_course_way():
    namespace: dict = {}
    exec("from needle.apps.simple_ml import *", namespace)
    for name in ["parse_mnist", "softmax_loss", "nn_epoch", "loss_err", "train_cifar10", "evaluate_ptb",
                 "ResNet9", "LanguageModel"]:
        assert name in namespace


def test_parse_mnist(tmp_path):
    images, labels = _write_mnist(tmp_path, "t10k", 6, 0)
    X, y = simple_ml.parse_mnist(str(tmp_path / "t10k-images-idx3-ubyte.gz"),
                                 str(tmp_path / "t10k-labels-idx1-ubyte.gz"))
    assert X.shape == (6, 784) and X.dtype == np.float32 and y.dtype == np.uint8
    np.testing.assert_allclose(X, images.reshape(6, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_train_mnist_on_a_small_folder(tmp_path):
    _write_mnist(tmp_path, "train", 300, 0)
    _write_mnist(tmp_path, "t10k", 100, 1)
    first = mlp_resnet.train_mnist(batch_size=50, epochs=4, lr=0.01, hidden_dim=20, data_dir=str(tmp_path))
    second = mlp_resnet.train_mnist(batch_size=50, epochs=4, lr=0.01, hidden_dim=20, data_dir=str(tmp_path))
    assert len(first) == 4 and first == second  # seeded with np.random.seed(4)
    train_err, train_loss, test_err, test_loss = first
    assert test_err < 0.5 and np.isfinite(test_loss)
