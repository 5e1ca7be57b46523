"""Code written for the CMU 10-414/714 homeworks (hw1-hw4) runs unchanged on needle.

Every test below is written the way the course's public tests and homework code are
written (their idioms: import lines, device lists built at import time, the in-place
``.flat[j] += eps`` gradient checker, ``_handle.ptr()`` view checks, seeded init), and
checks the result against a NumPy reference computed here from the formulas in docs/api.md.
The only lines that differ from course code are the imports of the course's ``apps``
files (``from simple_ml import *`` becomes ``from needle.apps.simple_ml import *``).
These are the tests that need no device under test (the course's import-time device
lists, default-device code, parameter counts, parse_mnist); the ones taking a ``device``
are the shipped suite needle_nn.testing.test_course_compat.
"""
# ruff: noqa: F403, F405  (the course's star imports of its apps files are the point)

from __future__ import annotations

import gzip

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest
from needle import backend_ndarray as nd
from needle.apps.mlp_resnet import *
from needle.apps.simple_ml import *

from needle_nn.testing.support import kaiming_uniform_ref, shipped_mnist_or_skip

# -- the course's device lists, built at import time (must never raise) -------------
_DEVICES = [
    ndl.cpu(),
    pytest.param(ndl.cuda(), marks=pytest.mark.skipif(not ndl.cuda().enabled(), reason="No GPU")),
]
_ND_DEVICES = [
    nd.cpu(),
    pytest.param(nd.cuda(), marks=pytest.mark.skipif(not nd.cuda().enabled(), reason="No GPU")),
]


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same NumPy RNG state (tests that draw init seed again)."""
    np.random.seed(0)


def num_params(model):
    return np.sum([np.prod(x.shape) for x in model.parameters()])


@pytest.fixture(scope="module")
def mnist():
    return parse_mnist(*shipped_mnist_or_skip())


@pytest.mark.parametrize("device", _DEVICES, ids=["cpu", "cuda"])
def test_import_time_device_list(device):
    if not device.enabled():  # the course always had cpu; here it is a separate package
        pytest.skip(f"{device!r} is not installed or cannot run here")
    host = np.random.randn(4, 3)
    t = ndl.Tensor(host, device=device)
    np.testing.assert_allclose((t @ ndl.transpose(t)).numpy(), host @ host.T, rtol=1e-5, atol=1e-5)


def test_disabled_devices_report_instead_of_raising():
    for dev in (ndl.cpu(), ndl.cuda(), nd.cpu(), nd.cuda()):
        assert isinstance(dev.enabled(), bool)
    assert repr(ndl.cuda()) == "cuda()" and repr(ndl.cpu()) == "cpu()"
    assert _ND_DEVICES[0] == ndl.cpu() and _ND_DEVICES[1].values[0] == ndl.cuda()


# -- hw2: nn modules ----------------------------------------------------------------------
def test_linear_seeded_default_device():
    # hw2 verbatim style: no device argument, the default device
    np.random.seed(0)
    f = nn.Linear(7, 4)
    np.random.seed(0)
    w = kaiming_uniform_ref(7, (7, 4))
    b = kaiming_uniform_ref(4, (4, 1)).reshape(1, 4)
    np.testing.assert_allclose(f.weight.cached_data.numpy(), w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(f.bias.cached_data.numpy(), b, rtol=1e-6, atol=1e-7)
    x = np.random.randn(3, 7)
    np.testing.assert_allclose(f(ndl.Tensor(x)).numpy(), x @ w + b, rtol=1e-5, atol=1e-5)


def test_resnet9_parameter_count():
    # hw4: `from simple_ml import *` brings ResNet9; count from the documented layers
    def conv_bn(cin, cout, k):
        return k * k * cin * cout + cout + 2 * cout

    expected = (conv_bn(3, 16, 7) + conv_bn(16, 32, 3) + 2 * conv_bn(32, 32, 3) + conv_bn(32, 64, 3)
                + conv_bn(64, 128, 3) + 2 * conv_bn(128, 128, 3) + (128 * 128 + 128) + (128 * 10 + 10))  # fmt: skip
    assert num_params(ResNet9()) == expected


# -- hw2: data -----------------------------------------------------------------------------
def test_ndarray_dataset_and_dataloader():
    # hw2 verbatim style (default device)
    for batch_size in (1, 10, 100):
        np.random.seed(0)
        train_dataset = ndl.data.NDArrayDataset(np.random.rand(100, 10))
        train_dataloader = ndl.data.DataLoader(dataset=train_dataset, batch_size=batch_size, shuffle=False)
        for i, batch in enumerate(train_dataloader):
            batch_x = batch[0].numpy()
            truth_x = train_dataset[i * batch_size : (i + 1) * batch_size][0].reshape((batch_size, 10))
            np.testing.assert_allclose(truth_x, batch_x, rtol=1e-6)
    np.random.seed(0)
    train_dataset = ndl.data.NDArrayDataset(np.arange(100))
    train_dataloader = iter(ndl.data.DataLoader(dataset=train_dataset, batch_size=1, shuffle=True))
    elements = np.array([next(train_dataloader)[0].numpy().item() for _ in range(10)])
    np.random.seed(0)
    np.testing.assert_array_equal(elements, np.random.permutation(100)[:10])


# -- hw2: MLPResNet ------------------------------------------------------------------------
def test_mlp_resnet_course_call():
    # hw2 verbatim style: `from mlp_resnet import *`, default device, float64 input
    np.random.seed(3)
    dim, hidden, blocks, classes = 15, 10, 2, 5
    model = MLPResNet(dim, hidden, blocks, classes, nn.BatchNorm1d, 0.5)
    out = model(ndl.Tensor(np.random.randn(2, dim)))
    assert out.shape == (2, classes)
    half = hidden // 2
    block = (hidden * half + half) + 2 * half + (half * hidden + hidden) + 2 * hidden
    assert num_params(model) == (dim * hidden + hidden) + blocks * block + (hidden * classes + classes)


def _read_idx(path, header_words):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    header = [int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(header_words)]
    return header, np.frombuffer(raw, dtype=np.uint8, offset=4 * header_words)


def test_parse_mnist(mnist):
    X, y = mnist
    image_file, label_file = shipped_mnist_or_skip()
    (_, n, rows, cols), pixels = _read_idx(image_file, 4)
    (_, n_labels), labels = _read_idx(label_file, 2)
    assert X.dtype == np.float32 and y.dtype == np.uint8
    assert X.shape == (n, rows * cols) and y.shape == (n_labels,) == (n,)
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_allclose(X, pixels.reshape(n, rows * cols) / 255.0, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(y, labels)


def test_float64_input_keeps_or_converts_as_the_readme_says():
    from pathlib import Path

    x = np.random.rand(2, 2)  # float64, like the course's hw1 data
    assert ndl.Tensor(x, device=ndl.cpu_numpy()).dtype == "float64"
    float32_only = ndl.backends.Device("test_float32_only", 0, ndl.cpu_numpy().__dict__, dtypes=("float32",))
    assert ndl.Tensor(x, device=float32_only).dtype == "float32"
    assert ndl.Tensor(x, device=ndl.cpu_numpy(), dtype="float32").dtype == "float32"
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    paragraph = next(p for p in readme.split("\n\n") if p.startswith("Float64 input"))
    for words in ("cpu_numpy", "float64", "hw1", "float32", 'dtype="float32"'):
        assert words in paragraph, words
