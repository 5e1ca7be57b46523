"""Two Python threads on the same opencl device get their own results.

A ``cl.Kernel`` holds its arguments: with ``set_args`` and the enqueue as two calls, a
thread switch between them enqueued the other thread's arguments (80-365 wrong results
per 3,000 iterations, once a PoCL abort). The switch interval is forced down so that a
switch between any two bytecodes is likely; bounded to a few seconds.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest


@pytest.fixture
def opencl_device(runtime_and_kernels):
    import needle as ndl

    return ndl.device("opencl")


def _run_switching_often(target, threads: int) -> list[threading.Thread]:
    """Run ``target(k)`` on ``threads`` threads with the interpreter switching between them
    every microsecond (as often as it can), and wait for them (at most 120 s each)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=target, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)
    finally:
        sys.setswitchinterval(old)
    return workers


def test_two_threads_computing_on_their_own_arrays_get_their_own_results(opencl_device):
    import needle as ndl

    iterations, threads = 300, 2
    wrong = [0] * threads
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            x = np.full((4, 8), k + 1.0, dtype=np.float32)
            a = ndl.Tensor(x, device=opencl_device)
            for _ in range(iterations):
                if not np.array_equal(((a * 3.0) + a).numpy(), 4.0 * x):
                    wrong[k] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = _run_switching_often(work, threads)
    assert not errors, errors
    assert not any(w.is_alive() for w in workers), "a thread hung"
    assert wrong == [0] * threads, f"wrong results per thread: {wrong}"


def test_two_threads_training_step_matches_the_serial_run(opencl_device):
    """A small model trained by two threads at once, each its own copy, equals the serial run."""
    import needle as ndl
    from needle import nn, optim

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 8)).astype(np.float32), rng.integers(0, 3, 16)

    def model() -> nn.Module:  # built in the main thread: initialisers share NumPy's global RNG
        np.random.seed(1)
        return nn.Sequential(nn.Linear(8, 16, device=opencl_device), nn.ReLU(), nn.Linear(16, 3, device=opencl_device))

    def train(model: nn.Module) -> np.ndarray:
        opt = optim.Adam(model.parameters(), lr=0.01)
        loss_fn = nn.SoftmaxLoss()
        for _ in range(10):
            opt.reset_grad()
            loss_fn(model(ndl.Tensor(x, device=opencl_device)), ndl.Tensor(y, device=opencl_device)).backward()
            opt.step()
        return np.concatenate([p.numpy().ravel() for p in model.parameters()])

    serial = train(model())
    models = [model(), model()]
    results: list[np.ndarray | BaseException] = [None, None]  # type: ignore[list-item]

    def run(k: int) -> None:
        try:
            results[k] = train(models[k])
        except BaseException as exc:
            results[k] = exc

    _run_switching_often(run, 2)
    for got in results:
        assert isinstance(got, np.ndarray), got
        np.testing.assert_array_equal(got, serial)


class _MarkerThatLetsAnotherThreadQueue:
    """A marker whose wait first runs ``meanwhile``: as if another thread queued commands
    while this one waited (deterministic, unlike a thread switch)."""

    def __init__(self, marker, meanwhile):
        self._marker, self._meanwhile = marker, meanwhile

    def wait(self):
        self._meanwhile()
        self._marker.wait()


def test_a_wait_keeps_the_commands_another_thread_queued_meanwhile(runtime, kernels, monkeypatch):
    """The wait forgets only commands queued before its marker. Dropping another thread's
    host copy queued meanwhile behind a closed gate deadlocked (pyopencl's ``NannyEvent``
    waits for its command in its destructor while holding the GIL, so the gate never
    opened): seen as CI hanging in the training test above."""
    assert runtime.batch > 0  # a CPU driver: commands wait behind gates
    a = kernels["Array"](16)
    kernels["fill"](a, 0.0)
    kernels["scalar_add"](a, 1.0, a)  # the device is busy: the next commands open a gate
    held: list = []  # our own references: dropping the runtime's then cannot hang this test

    def another_thread_queues():
        runtime._idle = False
        kernels["scalar_add"](a, 1.0, a)
        kernels["from_numpy"](np.full(16, 5.0, np.float32), a)
        held.extend(runtime.pending)

    cl = runtime.cl
    real_marker = cl.enqueue_marker

    class MarkerPatched:
        def __getattr__(self, name):
            return getattr(cl, name)

        def enqueue_marker(self, queue):
            monkeypatch.setattr(runtime, "cl", cl)  # once
            return _MarkerThatLetsAnotherThreadQueue(real_marker(queue), another_thread_queues)

    monkeypatch.setattr(runtime, "cl", MarkerPatched())
    runtime.finish()
    assert runtime._gate is not None, "the commands queued meanwhile should wait behind a closed gate"
    assert [name for name, _ in runtime.pending][-1:] == ["from_numpy"]
    np.testing.assert_array_equal(kernels["to_numpy"](a, (16,), (1,), 0), np.full(16, 5.0, np.float32))
    held.clear()
