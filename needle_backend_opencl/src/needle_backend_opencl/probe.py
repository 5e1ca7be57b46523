"""Is the opencl device usable here, and if not, why?

* ``probe()``: the cheap check the registry (and the nox probe, through
  ``ndl.device``) asks first: lists platforms and devices only, never compiles.
* ``python -m needle_backend_opencl.probe PI DI``: verifies one device in a child
  process (``discovery.check_in_child`` starts it on a device's first use).

The child check runs in its own process because a broken driver may not just fail but abort the
process: PyPI's PoCL 3.0 (LLVM 14) on a Zen 5 CPU builds needle's program into one
without kernels, then aborts with "still have references to IRs - can't release
LLVM context" when the context is released. The parent reads the verdict line; a
child that crashes or exits non-zero (even after printing "ok") marks the device
unusable, since the parent process would crash the same way.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from needle_core.hookspecs import ProbeResult

from . import discovery, forking

PREFIX = "needle-opencl-verdict:"
_kept: list[object] = []  # the runtime outlives the verdict line: releasing it may crash


def probe() -> ProbeResult:
    """Can the opencl device type run here? Enumeration only, never a build."""
    try:
        found = discovery.candidates()
    except ImportError as exc:
        return ProbeResult(False, f"pyopencl cannot be imported ({exc})", "pip install pyopencl")
    except forking.ForkedDeviceError as exc:
        return ProbeResult(False, str(exc), "start worker processes with multiprocessing.get_context('spawn')")
    if not found:
        return ProbeResult(False, "no OpenCL platform found: the ICD loader lists no driver", discovery.INSTALL_HINT)
    chosen = discovery.selected(found)
    if not chosen:
        labels = "; ".join(c.label for c in found)
        env = discovery.ENV_DEVICE
        return ProbeResult(
            False,
            f"{env}={os.environ.get(env)!r} matches none of the OpenCL devices here ({labels})",
            f"unset {env} or set it to part of one of those names",
        )
    return ProbeResult(True)


def check(platform_index: int, device_index: int) -> str:
    """``""`` when the device builds and runs needle's kernels, else the reason."""
    from .runtime import Runtime

    cl = discovery.opencl()
    device = cl.get_platforms()[platform_index].get_devices()[device_index]
    runtime = Runtime(cl, device)
    _kept.append(runtime)
    try:
        discovery.smoke_test(cl, runtime.context, runtime.queue)  # the one-line kernel
    except Exception as exc:
        return discovery.failure_reason(exc)
    try:
        runtime.build()  # needle's whole program (PoCL compiles work-group code at first launch)
        flags = cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR
        a = cl.Buffer(runtime.context, flags, hostbuf=np.arange(256, dtype=np.float32))
        runtime.launch("ewise_add", (256,), (runtime.group(256),), a, a, a, np.int32(256))
        out = np.empty(256, dtype=np.float32)
        cl.enqueue_copy(runtime.queue, out, a)
    except Exception as exc:
        return discovery.failure_reason(exc)
    if not np.array_equal(out, 2 * np.arange(256, dtype=np.float32)):
        return "needle's ewise_add kernel computed wrong values on this device"
    return ""


def main(argv: list[str]) -> int:
    reason = check(int(argv[0]), int(argv[1]))
    print(f"{PREFIX} {'fail ' + reason if reason else 'ok'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
