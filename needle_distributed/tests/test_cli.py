"""``mpirun -n 2 needle train``: every model, rank 0 alone speaks and writes, resume, global figures."""

from __future__ import annotations

import pickle
import re

import needle as ndl
import numpy as np
import pytest
from mpi_launch import mpirun, needle_train

QUICK = ["--limit-train", "600", "--epochs", "2", "--no-progress"]  # 6 global batches of 100 per epoch


def train2(*args: str, timeout: float = 300):
    res = mpirun(2, *needle_train(), *args, timeout=timeout)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _same_model(a_path, b_path):
    a, b = ndl.load(a_path), ndl.load(b_path)
    assert sorted(a["model"]) == sorted(b["model"])
    for key in a["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key], err_msg=key)
    return a, b


def test_mlp_resnet_on_two_ranks_saves_and_resumes_bit_identically(tmp_path):
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    out = train2(*QUICK, "--save", str(full))
    assert out.count("needle train: MLPResNet") == 1  # only rank 0 prints
    assert "distributed: 2 ranks over MPI" in out and "global batch 100 = 2 x 50 per rank" in out
    assert len(re.findall(r"^epoch +\d/2: train loss .* samples/s$", out, re.M)) == 2
    out = train2(*QUICK, "--max-steps", "8", "--save", str(part))
    assert "stopped after 8 steps" in out and "epoch 2, batch 2" in out
    position = ndl.load(part)["position"]
    assert position["seen"] == 200  # global count: 2 global batches of 100 in epoch 2 (not 2 x 50)
    assert sorted(np.asarray(position["order"]).tolist()) == list(range(600))  # the whole epoch's order
    out = train2("--no-progress", "--resume", str(part), "--save", str(part))
    assert "resumed at epoch 2" in out
    a, b = _same_model(full, part)
    for key in a["optimizer"]:
        np.testing.assert_array_equal(a["optimizer"][key], b["optimizer"][key], err_msg=key)
    np.testing.assert_array_equal(a["history"]["val_acc"], b["history"]["val_acc"])


def test_a_two_rank_checkpoint_resumes_in_one_process(tmp_path, capsys):
    from needle_nn.cli.train import main

    part = tmp_path / "part.npz"
    train2("--limit-train", "400", "--epochs", "1", "--no-progress", "--max-steps", "2", "--save", str(part))
    assert main(["--no-progress", "--resume", str(part)]) == 0
    assert "resumed at epoch 1" in capsys.readouterr().out


def test_batch_size_not_divisible_by_the_ranks_is_refused():
    res = mpirun(2, *needle_train(), "--batch-size", "99", "--no-progress", timeout=120)
    assert res.returncode != 0
    assert "--batch-size 99 is the global batch, split over 2 ranks: it must be divisible by 2 (e.g. 98 or 100)" \
        in res.stderr


def test_progress_bar_comes_from_rank_0_only(tmp_path):
    res = mpirun(2, *needle_train(), "--limit-train", "200", "--epochs", "1", "--progress", timeout=120)
    assert res.returncode == 0, res.stderr
    # tqdm redraws in place; each rank with a bar would start its own "epoch 1/1:   0%" line
    assert res.stderr.count("epoch 1/1:   0%") == 1, res.stderr


def _tiny_corpus(folder, seed):
    words = np.random.default_rng(seed).choice(["a", "b", "c", "d", "e"], (80, 6))
    (folder / "train.txt").write_text("\n".join(" ".join(line) for line in words))
    (folder / "test.txt").write_text("\n".join(" ".join(line) for line in words[:10]))


def test_lstm_lm_on_two_ranks_resumes_mid_epoch_bit_identically(tmp_path):
    _tiny_corpus(tmp_path, 1)
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    common = ["--model", "lstm_lm", "--data-dir", str(tmp_path), "--epochs", "1", "--batch-size", "4", "--no-progress"]
    out = train2(*common, "--save", str(full))
    assert out.count("LSTM language model") == 1 and "global batch 4 = 2 x 2 per rank" in out
    train2(*common, "--max-steps", "2", "--save", str(part))
    hidden = ndl.load(part)["position"]["hidden"]
    assert all(np.asarray(h).shape[1] == 4 for h in hidden.values())  # all 4 streams, as one process saves them
    train2("--model", "lstm_lm", "--no-progress", "--resume", str(part), "--save", str(part))
    a, b = _same_model(full, part)
    np.testing.assert_array_equal(a["history"]["train_loss"], b["history"]["train_loss"])


def test_resnet9_on_two_ranks(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 7]}, f)
    out = train2("--model", "resnet9", "--data-dir", str(tmp_path), "--epochs", "1", "--batch-size", "10",
                 "--no-progress")
    assert out.count("ResNet9 on CIFAR-10") == 1 and "validation accuracy" in out


@pytest.mark.parametrize("where", ["--device", "NEEDLE_DEVICE"])
def test_device_may_name_the_local_rank(where):
    # cpu_numpy has one index, so rank 1's cpu_numpy:1 must be refused: proof the field was filled per rank
    device = "cpu_numpy:{local_rank}"
    args, env = (["--device", device], {}) if where == "--device" else ([], {"NEEDLE_DEVICE": device})
    res = mpirun(2, *needle_train(), *args, "--limit-train", "200", "--epochs", "1", "--no-progress", timeout=120,
                 **env)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "device 'cpu_numpy:1' is not available" in out and "{local_rank}" not in out
