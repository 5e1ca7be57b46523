"""``needle train``: train a reference model with a progress bar, checkpoints and plots.

With no arguments it trains MLPResNet(784, 100, 3 blocks) on the MNIST images shipped
with needle-nn (8,000 train / 2,000 validation) on the default device.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from typing import Any

import numpy as np

from .. import checkpoint, optim
from ..apps._loop import run_epoch
from . import validate
from .errors import report, user_errors
from .hooks import load_train_hook
from .tasks import BUILDERS, DEFAULTS, StatefulLM

PROG = "needle train"

OPTIMIZERS = {"adam": optim.Adam, "sgd": optim.SGD}
_HISTORY = ("train_loss", "train_acc", "val_loss", "val_acc", "train_seconds")


class _StopTraining(Exception):
    """Raised from the batch callback when ``--max-steps`` is reached."""


class _EpochMeter:
    """Running loss/accuracy of the current epoch, the tqdm bar, and the step budget."""

    def __init__(self, args: argparse.Namespace, totals: tuple[float, int, int], seconds: float = 0.0) -> None:
        self.args = args
        self.loss_sum, self.correct, self.seen = totals
        self.seen_before = self.seen  # samples of this epoch trained before a resume
        self.seconds_before = seconds  # and the time they took
        self.steps = 0
        self.bar: Any = None
        self.t0 = time.perf_counter()

    def start(self, epoch: int, batches: int) -> None:
        self.t0 = time.perf_counter()
        if self.args.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=batches, desc=f"epoch {epoch + 1}/{self.args.epochs}", unit="batch", leave=False,
                            file=sys.stderr, dynamic_ncols=True)

    def on_batch(self, size: int, loss: float, correct: int) -> None:
        self.loss_sum += loss * size
        self.correct += correct
        self.seen += size
        self.steps += 1
        if self.bar is not None:
            rate = (self.seen - self.seen_before) / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.set_postfix(loss=f"{self.loss_sum / self.seen:.4f}", acc=f"{100 * self.correct / self.seen:.2f}%",
                                 samples_s=f"{rate:.0f}", refresh=False)
            self.bar.update(1)
        if self.args.max_steps is not None and self.steps >= self.args.max_steps:
            raise _StopTraining

    def close(self) -> float:
        """Close the bar; returns the seconds since ``start`` (this run's part of the epoch)."""
        if self.bar is not None:
            self.bar.refresh()  # show the final loss/accuracy even on runs shorter than tqdm's interval
            self.bar.close()
            self.bar = None
        return time.perf_counter() - self.t0

    def reset(self) -> None:
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0
        self.seen_before, self.seconds_before = 0, 0.0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="needle train",
        description="Train a reference model. Defaults: MLPResNet on the shipped MNIST (8,000 train / 2,000 "
                    "validation images), Adam lr 1e-3, weight decay 1e-3, batch 100, 10 epochs. With --resume, "
                    "options not given are taken from the checkpoint.",
    )
    p.add_argument("--model", choices=sorted(BUILDERS), default=None,
                   help="model to train (default: mlp_resnet, or the one in the --resume checkpoint)")
    p.add_argument("--device", default=None,
                   help="device name, e.g. cpu, cpu_numpy, cuda:0 (default: ndl.default_device())")
    p.add_argument("--epochs", type=int, default=None, help="passes over the training data")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--momentum", type=float, default=None, help="SGD momentum (default: 0)")
    p.add_argument("--data-dir", default=None,
                   help="full MNIST (idx .gz files), CIFAR-10 (python batches) or PTB (train.txt/test.txt) in the "
                        "course's layout; default for mlp_resnet: the shipped MNIST test set")
    p.add_argument("--limit-train", type=int, default=None, metavar="N",
                   help="use only the first N training samples (lines of text for lstm_lm)")
    p.add_argument("--seed", type=int, default=None,
                   help="NumPy seed for initialisation, shuffling and dropout (default: 0)")
    p.add_argument("--save", default=None, metavar="CKPT.npz", help="write a training checkpoint after every epoch")
    p.add_argument("--resume", default=None, metavar="CKPT.npz", help="continue the run saved in this checkpoint")
    p.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="stop after N training steps in this run (saving a checkpoint when --save is given)")
    p.add_argument("--plot", default=None, metavar="CURVES.png", help="plot loss/accuracy per epoch (needs matplotlib)")
    p.add_argument("--profile", default=None, metavar="TRACE.json",
                   help="profile the run: write a Chrome trace (Perfetto) and print the top ops")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: only when stdout and stderr are terminals)")
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of an error (also NEEDLE_DEBUG=1)")
    return p


def _resolve_device(name: str | None) -> Any:
    from needle_core import registry

    with user_errors("", registry.UnknownDeviceError, registry.BackendError, registry.DeviceUnavailableError,
                     ValueError, TypeError):
        return registry.device(name) if name else registry.default_device()


def _make_optimizer(args: argparse.Namespace, params: list) -> optim.Optimizer:
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    return optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)


_CONFIG = ("model", "epochs", "batch_size", "lr", "optimizer", "weight_decay", "momentum", "seed", "data_dir",
           "limit_train")


def _config(args: argparse.Namespace) -> dict[str, Any]:
    """The options a resumed run reuses (unset ones are left out: a checkpoint stores no None)."""
    return {k: getattr(args, k) for k in _CONFIG if getattr(args, k) is not None}


def _save(path: str, args: argparse.Namespace, task: Any, opt: optim.Optimizer, history: dict[str, list],
          **position: Any) -> None:
    state = checkpoint.training_state(task.model, opt, **position)
    state["config"] = _config(args)
    state["history"] = {k: np.asarray(v, dtype=np.float64) for k, v in history.items()}
    checkpoint.save(state, path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report(PROG, lambda: _profiled(args) if args.profile else _run(args), args.debug)


def _profiled(args: argparse.Namespace) -> int:
    """The run under ``ndl.profile()``: a Chrome trace file and the top ops printed."""
    from needle_core.tools import profile

    with profile() as prof:
        status = _run(args)
    prof.export_chrome_trace(args.profile)
    print(prof.table(limit=15))
    print(f"profile: Chrome trace written to {args.profile} (open it in https://ui.perfetto.dev)")
    return status


def _load_resume(args: argparse.Namespace) -> dict[str, Any]:
    with user_errors(f"--resume {args.resume}", FileNotFoundError, checkpoint.CheckpointError, OSError):
        state = checkpoint.load(args.resume)
    validate.check_resume(args.resume, args.model, state)
    return state


def _check_args(args: argparse.Namespace, resumed: dict[str, Any] | None) -> None:
    """Everything that can be checked before reading data or building a model."""
    from needle_core.registry.hints import install_command

    validate.check_numbers(args)
    if args.save:
        validate.check_output_file("--save", args.save)
    if args.profile:
        validate.check_output_file("--profile", args.profile)
    if args.plot:
        validate.check_plot(args.plot, install_command("needle-nn", "plot"))
    if args.data_dir is not None:
        validate.check_data_dir(args.model, args.data_dir)
    if resumed is not None:
        validate.check_resume_has_work(args.resume, resumed["position"], args.epochs)


def _run(args: argparse.Namespace) -> int:
    resumed = _load_resume(args) if args.resume else None
    # Unset options come from the checkpoint being resumed, then from the model's defaults.
    saved_config = resumed["config"] if resumed is not None else {}
    args.model = args.model or saved_config.get("model", "mlp_resnet")
    for key, value in {**DEFAULTS[args.model], **saved_config}.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.progress is None:  # bars only for a person watching, not in a log file or a pipe
        args.progress = sys.stdout.isatty() and sys.stderr.isatty()
    _check_args(args, resumed)

    hook = load_train_hook(args)  # e.g. needle-distributed under mpirun
    try:
        return _train(args, resumed, hook)
    except BaseException as exc:  # usage errors included: the hook may have to stop other processes
        if hook is not None:
            hook.failed(exc)
        raise


def _train(args: argparse.Namespace, resumed: dict[str, Any] | None, hook: Any) -> int:
    device = _resolve_device(args.device)
    np.random.seed(args.seed)
    reading = user_errors(f"--data-dir {args.data_dir}", FileNotFoundError, ValueError, OSError)
    with reading if args.data_dir is not None else nullcontext():
        task = BUILDERS[args.model](device, args.batch_size, args.data_dir, args.limit_train)
    opt = _make_optimizer(args, task.model.parameters())
    if hook is not None:
        task, opt = hook.prepare(task, opt)
    history: dict[str, list] = {k: [] for k in _HISTORY}
    start_epoch, totals, seconds = 0, (0.0, 0, 0), 0.0  # loss sum, correct, seen, time of an epoch cut short
    if resumed is not None:
        with user_errors(f"--resume {args.resume}", KeyError, ValueError):
            pos = checkpoint.restore_training_state(resumed, task.model, opt)
        history = {k: [float(x) for x in np.atleast_1d(resumed["history"][k])] for k in _HISTORY}
        start_epoch = int(pos["epoch"])
        if int(pos["batch"]) > 0:
            task.train.resume(pos["order"], int(pos["batch"]))
            totals = (float(pos["loss_sum"]), int(pos["correct"]), int(pos["seen"]))
            seconds = float(pos.get("seconds", 0.0))
            if isinstance(task.model, StatefulLM) and "hidden" in pos:  # truncated BPTT continues its state
                task.model.load_hidden_arrays(pos["hidden"], device)

    n_params = sum(int(np.prod(p.shape)) for p in task.model.parameters())
    print(f"needle train: {task.description}")
    print(f"  device {device}, {n_params:,} parameters, {args.optimizer} lr={args.lr} "
          f"weight_decay={args.weight_decay}, batch {args.batch_size}, {_count(args.epochs, 'epoch')}"
          + (f", resumed at epoch {start_epoch + 1}" if resumed else ""))

    meter = _EpochMeter(args, totals, seconds)
    on_batch = meter.on_batch if hook is None else hook.batch_callback(meter.on_batch)
    evaluate = run_epoch if hook is None else hook.evaluate
    t_run, run_seconds, run_epochs = time.perf_counter(), 0.0, 0
    for epoch in range(start_epoch, args.epochs):
        if isinstance(task.model, StatefulLM) and meter.seen == 0:
            task.model.reset()
        meter.start(epoch, len(task.train))
        try:
            run_epoch(task.train, task.model, task.loss_fn, opt, on_batch)
        except _StopTraining:
            elapsed = meter.close()
            if args.save:
                carried = task.model.hidden_arrays() if isinstance(task.model, StatefulLM) else {}
                _save(args.save, args, task, opt, history, epoch=epoch, batch=task.train.batch_index,
                      order=task.train.order, loss_sum=meter.loss_sum, correct=meter.correct, seen=meter.seen,
                      seconds=meter.seconds_before + elapsed, **({"hidden": carried} if carried else {}))
            where = f"; checkpoint {args.save}" if args.save else ""
            print(f"stopped after {_count(meter.steps, 'step')} (--max-steps) in epoch {epoch + 1}, "
                  f"batch {task.train.batch_index}{where}")
            return 0
        elapsed = meter.close()
        run_seconds += elapsed
        run_epochs += 1
        train_seconds = meter.seconds_before + elapsed  # the whole epoch, across a resume
        val_acc, val_loss = evaluate(task.val, task.model, task.loss_fn, None)
        seen = max(meter.seen, 1)
        values = (meter.loss_sum / seen, meter.correct / seen, val_loss, val_acc, train_seconds)
        for key, value in zip(_HISTORY, values, strict=True):
            history[key].append(float(value))
        rate = (meter.seen - meter.seen_before) / max(elapsed, 1e-9)
        print(f"epoch {epoch + 1:>2}/{args.epochs}: train loss {values[0]:.4f} acc {100 * values[1]:.2f}% | "
              f"val loss {val_loss:.4f} acc {100 * val_acc:.2f}% | {elapsed:.1f} s, {rate:.0f} samples/s")
        meter.reset()
        if args.save:
            _save(args.save, args, task, opt, history, epoch=epoch + 1, batch=0)

    wall = time.perf_counter() - t_run
    if history["val_acc"]:
        print(_summary(history, run_epochs, run_seconds, wall, resumed is not None, device))
    if args.plot:
        from .plot import write_curves

        write_curves(args.plot, history, f"{task.description}\n{args.optimizer} lr={args.lr}, batch "
                                         f"{args.batch_size}, device {device}")
        print(f"curves written to {args.plot}")
    if args.save:
        print(f"checkpoint written to {args.save}")
    return 0


def _summary(history: dict[str, list], run_epochs: int, run_seconds: float, wall: float, resumed: bool,
             device: Any) -> str:
    """The last line: accuracy, then times that say which run they cover."""
    epochs = len(history["val_acc"])
    result = (f"done: validation accuracy {100 * history['val_acc'][-1]:.2f}% (loss {history['val_loss'][-1]:.4f}) "
              f"after {_count(epochs, 'epoch')}")
    if not resumed:
        return f"{result}; training time {run_seconds:.1f} s, wall time {wall:.1f} s, device {device}"
    total = sum(history["train_seconds"])
    return (f"{result} ({run_epochs} in this run); this run: training time {run_seconds:.1f} s, wall time "
            f"{wall:.1f} s; all {_count(epochs, 'epoch')}: training time {total:.1f} s; device {device}")


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())


if __name__ == "__main__":  # python -m needle_nn.cli.train
    raise SystemExit(main())
