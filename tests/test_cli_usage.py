"""``needle train`` mistakes cost a second: checked before any work, one message, exit status 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from needle_nn.cli import console_main
from needle_nn.cli.train import main
from registry_support import isolated_env

QUICK = ["--limit-train", "200", "--epochs", "1", "--no-progress"]


def _mistake(capsys, argv):
    """Run ``needle train argv``: it must stop with status 2 before building anything."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "", f"work started before the mistake was reported:\n{out}"
    assert err.startswith("needle train: error: ") and err.count("error:") == 1, err
    return err


@pytest.fixture()
def finished(tmp_path, capsys):
    """A checkpoint of a finished one-epoch run."""
    path = tmp_path / "done.npz"
    assert main([*QUICK, "--save", str(path)]) == 0
    capsys.readouterr()
    return path


@pytest.mark.parametrize("argv,expected", [
    (["--epochs", "0"], "--epochs must be a positive whole number, got 0"),
    (["--epochs", "-3"], "--epochs must be a positive whole number, got -3"),
    (["--batch-size", "0"], "--batch-size must be a positive whole number, got 0"),
    (["--limit-train", "0"], "--limit-train must be a positive whole number, got 0"),
    (["--max-steps", "0"], "--max-steps must be a positive whole number, got 0"),
    (["--seed", "-1"], "--seed must be between 0 and 2**32 - 1"),
    (["--momentum", "1.5", "--optimizer", "sgd"], "--momentum must be in [0, 1)"),
    (["--save", "/no/such/folder/ckpt.npz"], "the folder /no/such/folder does not exist"),
    (["--plot", "/no/such/folder/curves.png"], "the folder /no/such/folder does not exist"),
    (["--data-dir", "/no/such/folder"], "--data-dir /no/such/folder does not exist"),
    (["--resume", "/no/such/ckpt.npz"], "checkpoint not found"),
    (["--device", "nope"], "unknown device 'nope'"),
])
def test_mistakes_are_reported_before_any_work(argv, expected, capsys):
    assert expected in _mistake(capsys, [*argv, "--no-progress"])


def test_save_into_a_folder_name(tmp_path, capsys):
    assert "that is a folder" in _mistake(capsys, ["--save", str(tmp_path)])


def test_needle_device_names_an_unknown_device(monkeypatch, capsys):
    monkeypatch.setenv("NEEDLE_DEVICE", "nope")
    assert "NEEDLE_DEVICE='nope'" in _mistake(capsys, QUICK)


def test_plot_without_matplotlib_is_refused_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what find_spec reports when it is not installed
    err = _mistake(capsys, [*QUICK, "--plot", str(tmp_path / "c.png")])
    assert "--plot needs matplotlib" in err and "pip install" in err and "[plot]" in err


def test_plot_to_a_file_type_matplotlib_cannot_write(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert "cannot write .xyz files" in _mistake(capsys, [*QUICK, "--plot", str(tmp_path / "c.xyz")])


def test_data_dir_names_every_missing_file(tmp_path, capsys):
    err = _mistake(capsys, ["--data-dir", str(tmp_path)])
    assert "holds none of the files --model mlp_resnet reads" in err
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        assert name in err
    (tmp_path / "train.txt").write_text("a b\n")
    err = _mistake(capsys, ["--model", "lstm_lm", "--data-dir", str(tmp_path)])
    assert "lacks test.txt" in err


def test_corrupt_data_file_is_one_message(tmp_path, capsys):
    for name in ("train.txt", "test.txt"):
        (tmp_path / name).write_bytes(b"\xff\xfe\x00 not text")
    assert main(["--model", "lstm_lm", "--data-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"needle train: error: --data-dir {tmp_path}: ") and "Traceback" not in err


@pytest.mark.parametrize("content,why", [
    (b"garbage", "not an .npz (zip) archive"),
    (b"\x80\x04\x95pickled", "not an .npz (zip) archive"),
    (b"PK\x03\x04truncated", "damaged or truncated"),
])
def test_resume_of_a_file_that_is_not_a_checkpoint(tmp_path, content, why, capsys):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    err = _mistake(capsys, ["--resume", str(path)])
    assert "is not a needle checkpoint" in err and why in err
    assert "pickle" not in err.replace("pickled", "")  # never suggests allow_pickle or pickle.load


def test_resume_of_plain_arrays_is_not_a_training_checkpoint(tmp_path, capsys):
    path = tmp_path / "weights.npz"
    np.savez(path, w=np.zeros(3))
    assert "not a checkpoint written by needle train --save" in _mistake(capsys, ["--resume", str(path)])


def test_resume_of_a_finished_run_needs_more_epochs(finished, capsys):
    err = _mistake(capsys, ["--resume", str(finished), "--no-progress"])
    assert "already trained 1 epoch (--epochs 1)" in err and "--epochs 2" in err
    assert main(["--resume", str(finished), "--epochs", "2", "--no-progress"]) == 0
    assert "epoch  2/2" in capsys.readouterr().out


def test_resume_takes_the_model_from_the_checkpoint(finished, capsys):
    err = _mistake(capsys, ["--model", "lstm_lm", "--resume", str(finished)])
    assert "trained --model mlp_resnet, not lstm_lm; add --model mlp_resnet" in err
    assert main(["--resume", str(finished), "--epochs", "2", "--no-progress"]) == 0  # no --model needed


def test_negative_learning_rate_warns_and_trains(capsys):
    assert main([*QUICK, "--lr", "-0.1"]) == 0
    out, err = capsys.readouterr()
    assert "needle train: warning: --lr -0.1 is negative" in err and "done:" in out


# -- the command as a user runs it -------------------------------------------------------------------------
def _needle(*args, env=None):
    return subprocess.run([sys.executable, "-m", "needle", *args], capture_output=True, text=True, timeout=300,
                          env=env or isolated_env())


def test_unknown_device_is_one_message_with_status_2_and_debug_shows_the_traceback():
    res = _needle("train", "--device", "nope")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("unknown device 'nope'") == 1 and "Traceback" not in res.stderr
    for args, env in ((("--debug",), {}), ((), {"NEEDLE_DEBUG": "1"})):
        res = _needle("train", "--device", "nope", *args, env=isolated_env(**env))
        assert res.returncode == 1 and "Traceback" in res.stderr and "unknown device 'nope'" in res.stderr


def test_unusable_device_is_one_message_with_status_2():
    # the fake-GPU fixture declares a cuda device whose driver is missing
    for args, env in (((), {"NEEDLE_DEVICE": "cuda"}), (("--device", "cuda"), {})):
        res = _needle("train", *args, env=isolated_env("needle_fixture_fakegpu", **env))
        assert res.returncode == 2 and res.stdout == "", res
        assert res.stderr.startswith("needle train: error: ") and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.count("error:") == 1 and "is not available: no NVIDIA driver found" in res.stderr


def test_needle_with_no_command_prints_help_and_fails(capsys):
    assert console_main([]) == 2
    err = capsys.readouterr().err
    assert "usage: needle <command>" in err and "train" in err
    res = _needle()
    assert res.returncode == 2 and "usage:" in res.stderr


@pytest.mark.parametrize("command", [["devices", "--no-verify"], ["train", *QUICK]])
def test_a_closed_pipe_ends_quietly(command):
    # `python -m needle devices | head -3`: the reader leaves before needle has written everything
    proc = subprocess.Popen([sys.executable, "-m", "needle", *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=isolated_env())
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    assert "BrokenPipeError" not in err and "Traceback" not in err, err


def test_progress_bars_only_on_a_terminal(capsys):
    assert main(["--limit-train", "200", "--epochs", "1"]) == 0  # capsys: stdout is not a terminal
    assert "batch/s" not in capsys.readouterr().err and "it/s" not in capsys.readouterr().err
    assert main(["--limit-train", "200", "--epochs", "1", "--progress"]) == 0
    assert "epoch 1/1" in capsys.readouterr().err


def test_one_epoch_is_singular_and_devices_print_by_name(capsys):
    import needle as ndl

    assert main([*QUICK, "--device", "cpu_numpy"]) == 0
    out = capsys.readouterr().out
    assert "1 epochs" not in out and ", 1 epoch\n" in out and "after 1 epoch;" in out
    assert "device cpu_numpy," in out and out.rstrip().endswith("device cpu_numpy")
    assert str(ndl.cpu_numpy()) == "cpu_numpy" and repr(ndl.cpu_numpy()) == "cpu_numpy()"  # course repr kept


def test_resumed_summary_says_which_run_each_time_covers(tmp_path, capsys):
    part = tmp_path / "part.npz"
    assert main(["--limit-train", "500", "--epochs", "2", "--max-steps", "7", "--no-progress",
                 "--save", str(part)]) == 0
    capsys.readouterr()
    assert main(["--resume", str(part), "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    m = re.search(r"after 2 epochs \(1 in this run\); this run: training time ([\d.]+) s, wall time ([\d.]+) s; "
                  r"all 2 epochs: training time ([\d.]+) s", last)
    assert m, last
    run_train, run_wall, total = map(float, m.groups())
    assert run_train <= run_wall and run_train <= total


def test_plot_has_whole_epoch_ticks_and_says_what_was_trained(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from needle_nn.cli import plot

    figures = []
    monkeypatch.setattr(plot, "curves_figure", lambda h, t, real=plot.curves_figure: figures.append(real(h, t))
                        or figures[-1])
    png = tmp_path / "c.png"
    assert main(["--limit-train", "200", "--epochs", "3", "--no-progress", "--lr", "0.002", "--device",
                 "cpu_numpy", "--plot", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    (fig,) = figures
    title = fig._suptitle.get_text()
    assert "MLPResNet" in title and "lr=0.002" in title and "cpu_numpy" in title
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if 1 <= t <= 3]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_install_hints_name_the_folder_in_a_checkout(monkeypatch, tmp_path):
    from needle_core.registry import hints

    root = tmp_path / "repo"
    for folder in ("needle_core", "needle_backend_opencl", "needle_nn"):
        (root / folder).mkdir(parents=True)
        (root / folder / "pyproject.toml").write_text("")
    monkeypatch.setattr(hints, "checkout_root", lambda: root)
    monkeypatch.chdir(root)
    assert hints.install_command("needle-backend-opencl") == "pip install ./needle_backend_opencl"
    assert hints.install_command("needle-nn", "plot") == "pip install './needle_nn[plot]'"
    monkeypatch.chdir(tmp_path)
    assert hints.install_command("needle-backend-opencl") == (
        f"pip install ./needle_backend_opencl (from the repository root, {root})")
    assert hints.install_command("needle-backend-foo") == "pip install needle-backend-foo"  # not in the checkout
    monkeypatch.setattr(hints, "checkout_root", lambda: None)  # an index install
    assert hints.install_command("needle-backend-opencl") == "pip install needle-backend-opencl"


def test_this_checkout_is_recognised():
    from needle_core.registry import hints

    hints.checkout_root.cache_clear()
    root = hints.checkout_root()
    assert root is not None and (root / "needle_backend_opencl" / "pyproject.toml").is_file()
    assert os.path.samefile(root, os.path.join(os.path.dirname(__file__), ".."))
