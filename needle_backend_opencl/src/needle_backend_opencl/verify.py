"""Verify one OpenCL device in a child process: ``python -m needle_backend_opencl.verify PI DI``.

Runs in its own process because a broken driver may not just fail but abort the
process: PyPI's PoCL 3.0 (LLVM 14) on a Zen 5 CPU builds needle's program into one
without kernels, then aborts with "still have references to IRs - can't release
LLVM context" when the context is released. The parent reads the verdict line; a
child that crashes or exits non-zero (even after printing "ok") marks the device
unusable, since the parent process would crash the same way.
"""

from __future__ import annotations

import sys

import numpy as np

PREFIX = "needle-opencl-verdict:"
_kept: list[object] = []  # the runtime outlives the verdict line: releasing it may crash


def check(platform_index: int, device_index: int) -> str:
    """``""`` when the device builds and runs needle's kernels, else the reason."""
    from . import discovery
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
