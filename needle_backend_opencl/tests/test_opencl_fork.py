"""A process forked after its parent used opencl: the child gets a clear error at once
(naming the 'spawn' start method) instead of hanging, and the parent carries on.

Each scenario runs in its own Python process under a timeout: a regression shows up as
a hang, which must fail this test rather than stall the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, multiprocessing as mp, os, sys
    import numpy as np
    import needle as ndl

    def use_opencl(q):
        try:
            a = ndl.Tensor(np.ones(4, np.float32), device=ndl.device("opencl"))
            q.put(["computed", (a * 2.0).numpy().tolist()])
        except Exception as exc:
            q.put([type(exc).__name__, str(exc)])

    def numpy_only(q):  # a data-loading worker that never touches the device
        q.put(["numpy", float(np.ones(3).sum())])

    def run(method, target):
        ctx = mp.get_context(method)
        q = ctx.Queue()
        p = ctx.Process(target=target, args=(q,))
        p.start()
        p.join(60)
        if p.is_alive():
            p.kill()
            return ["hung", method]
        return q.get(timeout=10) + [p.exitcode]

    if __name__ == "__main__" and sys.argv[1:] == ["listed-only"]:
        names = [d.name for d in ndl.devices()]  # queries (and so starts) the driver
        print("REPORT " + json.dumps({"listed": "opencl" in names, "fork_opencl": run("fork", use_opencl)}))
    elif __name__ == "__main__":
        dev = ndl.device("opencl")
        a = ndl.Tensor(np.arange(4, dtype=np.float32), device=dev)
        report = {"before": (a + 1.0).numpy().tolist()}
        report["fork_opencl"] = run("fork", use_opencl)
        report["fork_numpy"] = run("fork", numpy_only)
        pid = os.fork()
        if pid == 0:  # drops a parent buffer and exits through interpreter finalisation
            del a
            sys.exit(0)
        report["fork_exit_status"] = os.waitpid(pid, 0)[1]
        report["spawn_opencl"] = run("spawn", use_opencl)
        report["after"] = (a * 2.0).numpy().tolist()
        print("REPORT " + json.dumps(report), flush=True)
    """
)


def _scenarios(tmp_path_factory, *args: str) -> dict:
    script = tmp_path_factory.mktemp("fork") / "fork_scenarios.py"
    script.write_text(SCRIPT)
    try:
        done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the fork scenarios hung: {exc}")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stdout + done.stderr
    return json.loads(lines[-1][len("REPORT ") :])


@pytest.fixture(scope="module")
def report(runtime_and_kernels, tmp_path_factory):
    return _scenarios(tmp_path_factory)


def test_forked_child_using_opencl_gets_a_clear_error_naming_spawn(report):
    kind, message, exitcode = report["fork_opencl"]
    assert kind == "ForkedDeviceError", report["fork_opencl"]
    assert "spawn" in message and "fork" in message and exitcode == 0


def test_forked_child_not_using_opencl_is_unaffected(report):
    assert report["fork_numpy"] == ["numpy", 3.0, 0]
    assert report["fork_exit_status"] == 0  # finalisation released nothing that hangs


def test_parent_carries_on_and_spawned_workers_can_use_opencl(report):
    assert report["before"] == [1.0, 2.0, 3.0, 4.0]
    assert report["after"] == [0.0, 2.0, 4.0, 6.0]
    assert report["spawn_opencl"] == ["computed", [2.0, 2.0, 2.0, 2.0], 0]


def test_child_of_a_parent_that_only_listed_devices_gets_the_error_too(runtime_and_kernels, tmp_path_factory):
    """Listing devices starts the driver; a child that then opened its own context hung."""
    listed = _scenarios(tmp_path_factory, "listed-only")
    assert listed["listed"]
    kind, message, exitcode = listed["fork_opencl"]
    assert "ForkedDeviceError" in message and "spawn" in message and exitcode == 0, listed
