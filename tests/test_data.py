"""needle.data: datasets, transforms, text utilities and their error messages (the device tests are
needle_nn.testing.test_data)."""

from __future__ import annotations

import gzip
import pickle

import needle as ndl
import numpy as np
import pytest
from needle_nn.cli.tasks import shipped_mnist_files


def _write_idx(path, magic, dims, payload):
    header = b"".join(int(v).to_bytes(4, "big") for v in (magic, *dims))
    with gzip.open(path, "wb") as f:
        f.write(header + payload)


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7, dtype=np.uint8)
    _write_idx(tmp_path / "img.gz", 2051, (7, 28, 28), images.tobytes())
    _write_idx(tmp_path / "lab.gz", 2049, (7,), labels.tobytes())
    return tmp_path, images, labels


def test_mnist_dataset_reads_idx(tiny_mnist):
    path, images, labels = tiny_mnist
    ds = ndl.data.MNISTDataset(str(path / "img.gz"), str(path / "lab.gz"))
    assert len(ds) == 7
    x, y = ds[2]
    assert x.dtype == np.float32 and x.shape == (784,)
    np.testing.assert_allclose(x, images[2].reshape(-1) / 255.0, rtol=1e-6)
    assert y == labels[2]
    xb, yb = ds[1:4]
    assert xb.shape == (3, 784) and list(yb) == list(labels[1:4])
    xi, yi = ds[np.array([6, 0])]
    np.testing.assert_allclose(xi, images[[6, 0]].reshape(2, -1) / 255.0, rtol=1e-6)


def test_shipped_mnist_is_the_test_set():
    ds = ndl.data.MNISTDataset(*shipped_mnist_files())
    assert len(ds) == 10000
    assert 0.0 <= ds.images.min() and ds.images.max() == 1.0
    assert set(np.unique(ds.labels)) == set(range(10))


def test_mnist_transforms_see_hwc_images(tiny_mnist):
    path, images, _ = tiny_mnist
    seen = []

    def record(img):
        seen.append(img.shape)
        return img[::-1]  # flip H

    ds = ndl.data.MNISTDataset(str(path / "img.gz"), str(path / "lab.gz"), transforms=[record])
    x, _ = ds[3]
    assert seen == [(28, 28, 1)]
    np.testing.assert_allclose(x.reshape(28, 28), images[3][::-1] / 255.0, rtol=1e-6)
    xb, _ = ds[0:2]
    assert xb.shape == (2, 784)


@pytest.mark.parametrize("which", ["img", "lab"])
def test_mnist_missing_file_names_file_and_format(tiny_mnist, which):
    path, _, _ = tiny_mnist
    (path / f"{which}.gz").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{which}\.gz.*gzip-compressed IDX"):
        ndl.data.MNISTDataset(str(path / "img.gz"), str(path / "lab.gz"))


def test_mnist_corrupt_files(tmp_path, tiny_mnist):
    path, _, _ = tiny_mnist
    (tmp_path / "plain.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"plain\.gz.*expected a gzip-compressed IDX image file"):
        ndl.data.MNISTDataset(str(tmp_path / "plain.gz"), str(path / "lab.gz"))
    _write_idx(tmp_path / "magic.gz", 1234, (1, 28, 28), bytes(784))
    with pytest.raises(ValueError, match=r"magic number 1234, not 2051"):
        ndl.data.MNISTDataset(str(tmp_path / "magic.gz"), str(path / "lab.gz"))
    _write_idx(tmp_path / "short.gz", 2051, (2, 28, 28), bytes(784))
    with pytest.raises(ValueError, match=r"short\.gz.*header says 2x28x28"):
        ndl.data.MNISTDataset(str(tmp_path / "short.gz"), str(path / "lab.gz"))
    _write_idx(tmp_path / "few.gz", 2049, (3,), bytes(3))
    with pytest.raises(ValueError, match="7 images but .* 3 labels"):
        ndl.data.MNISTDataset(str(path / "img.gz"), str(tmp_path / "few.gz"))


def test_random_flip_horizontal():
    img = np.arange(2 * 3 * 1, dtype=np.float32).reshape(2, 3, 1)
    np.random.seed(0)
    draws = [np.random.rand() < 0.5 for _ in range(6)]
    np.random.seed(0)
    t = ndl.data.RandomFlipHorizontal(p=0.5)
    for flipped in draws:
        np.testing.assert_array_equal(t(img), img[:, ::-1, :] if flipped else img)


def test_random_crop_matches_documented_shift():
    img = np.random.rand(5, 6, 2).astype(np.float32)
    np.random.seed(3)
    sx, sy = np.random.randint(-2, 3, size=2)
    np.random.seed(3)
    out = ndl.data.RandomCrop(padding=2)(img)
    padded = np.pad(img, ((2, 2), (2, 2), (0, 0)))
    np.testing.assert_array_equal(out, padded[2 + sx : 2 + sx + 5, 2 + sy : 2 + sy + 6])
    assert out.shape == img.shape


def test_loader_resume_continues_a_saved_epoch():
    ds = ndl.data.NDArrayDataset(np.arange(10, dtype=np.float32))
    loader = ndl.data.DataLoader(ds, batch_size=3, shuffle=True)
    np.random.seed(1)
    it = iter(loader)
    next(it)
    order, position = loader.order.copy(), loader.batch_index
    rest = [b[0].numpy() for b in it]
    loader.resume(order, position)
    resumed = [b[0].numpy() for b in loader]
    assert len(resumed) == len(rest) == 3
    for a, b in zip(rest, resumed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_ndarray_dataset_length_mismatch():
    with pytest.raises(ValueError, match="same length"):
        ndl.data.NDArrayDataset(np.zeros(3), np.zeros(4))


@pytest.fixture
def ptb(tmp_path):
    (tmp_path / "train.txt").write_text("the cat sat\n the dog \nsat cat\n")
    (tmp_path / "test.txt").write_text("a cat\n")
    return tmp_path


def test_corpus_dictionary_and_eos(ptb):
    corpus = ndl.data.Corpus(str(ptb))
    d = corpus.dictionary
    assert d.idx2word[:5] == ["the", "cat", "sat", "<eos>", "dog"]
    assert corpus.train == [0, 1, 2, 3, 0, 4, 3, 2, 1, 3]
    assert corpus.test == [5, 1, 3] and len(d) == 6
    assert ndl.data.Corpus(str(ptb), max_lines=1).train == [0, 1, 2, 3]
    assert d.add_word("cat") == 1


def test_corpus_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train\.txt.*one sentence per line"):
        ndl.data.Corpus(str(tmp_path))


def test_cifar10_dataset(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in [*[(f"data_batch_{i}", 3) for i in range(1, 6)], ("test_batch", 2)]:
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"labels": list(rng.integers(0, 10, n))}, f)
    train = ndl.data.CIFAR10Dataset(str(tmp_path), train=True)
    test = ndl.data.CIFAR10Dataset(str(tmp_path), train=False)
    assert len(train) == 15 and len(test) == 2
    x, y = train[0]
    assert x.shape == (3, 32, 32) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert train[0:4][0].shape == (4, 3, 32, 32)
    (tmp_path / "test_batch").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"test_batch.*CIFAR-10 python batches"):
        ndl.data.CIFAR10Dataset(str(tmp_path), train=False)
    with pytest.raises(FileNotFoundError, match=r"data_batch_1.*CIFAR-10"):
        ndl.data.CIFAR10Dataset(str(tmp_path / "nope"), train=True)


def test_device_suites_skip_with_a_reason_when_the_shipped_mnist_is_missing(monkeypatch, tmp_path):
    from needle_nn.testing import support

    missing = (str(tmp_path / "img.gz"), str(tmp_path / "lab.gz"))
    monkeypatch.setattr(support, "shipped_mnist_files", lambda: missing)
    with pytest.raises(pytest.skip.Exception, match=r"MNIST data absent: .*img\.gz, .*lab\.gz not found.*reinstall"):
        support.shipped_mnist_or_skip()
