"""``needle train``: the default run on the shipped data, checkpoints, resume, plots, errors."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys

import needle as ndl
import numpy as np
import pytest
from needle_nn.cli import console_main
from needle_nn.cli.train import main

from needle_nn.testing.support import run_train, validation_accuracy

QUICK = ["--limit-train", "600", "--epochs", "2", "--no-progress"]


def test_save_then_resume_is_bit_identical(tmp_path, capsys):
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    run_train(capsys, *QUICK, "--save", str(full))
    out = run_train(capsys, *QUICK, "--max-steps", "8", "--save", str(part))  # 6 batches per epoch: stops in epoch 2
    assert "stopped after 8 steps" in out and "epoch 2, batch 2" in out
    out = run_train(capsys, "--no-progress", "--resume", str(part), "--save", str(part))  # options from the checkpoint
    assert "resumed at epoch 2" in out
    a, b = ndl.load(full), ndl.load(part)
    assert sorted(a["model"]) == sorted(b["model"])
    for key in a["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key], err_msg=key)
    for key in a["optimizer"]:
        np.testing.assert_array_equal(a["optimizer"][key], b["optimizer"][key], err_msg=key)
    np.testing.assert_array_equal(a["history"]["val_acc"], b["history"]["val_acc"])


def test_resume_with_another_model_is_refused(tmp_path, capsys):
    ckpt = tmp_path / "c.npz"
    run_train(capsys, *QUICK, "--max-steps", "1", "--save", str(ckpt))
    capsys.readouterr()
    assert main(["--model", "lstm_lm", "--resume", str(ckpt)]) == 2
    assert "trained --model mlp_resnet, not lstm_lm" in capsys.readouterr().err


def test_plot_writes_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curves.png"
    out = run_train(capsys, "--limit-train", "200", "--epochs", "2", "--no-progress", "--plot", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "curves written" in out


def test_progress_bar_shows_loss_accuracy_and_rate(capsys):
    assert main(["--limit-train", "300", "--epochs", "1", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err and "acc=" in err and "samples_s=" in err


def test_sgd_optimizer_option(capsys):
    out = run_train(capsys, "--limit-train", "300", "--epochs", "1", "--no-progress", "--optimizer", "sgd",
                    "--lr", "0.1", "--momentum", "0.9")
    assert "sgd lr=0.1" in out


@pytest.mark.parametrize("model,what", [("resnet9", "CIFAR-10"), ("lstm_lm", "Penn Treebank")])
def test_models_needing_data_say_so(model, what, capsys):
    assert main(["--model", model]) == 2
    assert re.search(f"--data-dir.*{what}", capsys.readouterr().err)


def test_missing_mnist_folder_names_the_files(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err and "t10k-labels-idx1-ubyte.gz" in err


def test_lstm_lm_on_a_tiny_corpus(tmp_path, capsys):
    words = np.random.default_rng(0).choice(["a", "b", "c", "d"], (60, 6))
    (tmp_path / "train.txt").write_text("\n".join(" ".join(line) for line in words))
    (tmp_path / "test.txt").write_text("\n".join(" ".join(line) for line in words[:10]))
    out = run_train(capsys, "--model", "lstm_lm", "--data-dir", str(tmp_path), "--epochs", "1", "--batch-size", "4",
                    "--no-progress")
    assert "LSTM language model" in out and "validation accuracy" in out


def test_lstm_lm_resumed_mid_epoch_is_bit_identical(tmp_path, capsys):
    # the hidden state carried across chunks (truncated BPTT) is part of the checkpoint
    words = np.random.default_rng(1).choice(["a", "b", "c", "d", "e"], (80, 6))
    (tmp_path / "train.txt").write_text("\n".join(" ".join(line) for line in words))
    (tmp_path / "test.txt").write_text("\n".join(" ".join(line) for line in words[:10]))
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    common = ["--model", "lstm_lm", "--data-dir", str(tmp_path), "--epochs", "1", "--batch-size", "4", "--no-progress"]
    run_train(capsys, *common, "--save", str(full))
    out = run_train(capsys, *common, "--max-steps", "2", "--save", str(part))
    assert "stopped after 2 steps" in out
    assert "hidden" in ndl.load(part)["position"]
    run_train(capsys, "--model", "lstm_lm", "--no-progress", "--resume", str(part), "--save", str(part))
    a, b = ndl.load(full), ndl.load(part)
    for key in a["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key], err_msg=key)
    np.testing.assert_array_equal(a["history"]["train_loss"], b["history"]["train_loss"])


def test_resnet9_on_tiny_cifar_in_the_course_layout(tmp_path, capsys):
    folder = tmp_path / "cifar-10-batches-py"  # --data-dir may name the course's data/ folder
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 7]}, f)
    out = run_train(capsys, "--model", "resnet9", "--data-dir", str(tmp_path), "--epochs", "1", "--no-progress")
    assert "ResNet9 on CIFAR-10" in out and "431,946 parameters" in out and "validation accuracy" in out


def test_console_script_dispatch(capsys):
    with pytest.raises(SystemExit) as exc:
        console_main(["train", "--help"])
    assert exc.value.code == 0 and "--model" in capsys.readouterr().out


def test_python_dash_m_needle_train_help():
    res = subprocess.run([sys.executable, "-m", "needle", "train", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and "--resume" in res.stdout


@pytest.mark.slow
def test_default_run_reaches_94_percent(capsys):
    out = run_train(capsys, "--no-progress")  # the README's quick-start command, on the default device
    assert validation_accuracy(out) >= 0.94
