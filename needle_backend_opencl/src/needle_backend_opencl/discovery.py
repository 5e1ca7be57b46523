"""Which OpenCL devices exist here, and which of them can really compile and run.

Two levels, so that choosing the default device never compiles OpenCL:

* ``probe.probe()`` only enumerates platforms and devices (no context, no build);
* ``verdict(candidate)``, once per process and only when a device is used or
  listed, checks it in a child process: the one-line kernel, then needle's program.
  A driver can list a device and still fail to compile for it (PyPI's PoCL 3.0 with
  LLVM 14 stops with "unknown target CPU 'generic'" on some CPUs; on this project's
  Zen 5 machine it builds needle's program without kernels, then aborts), so only a
  device that passes counts as usable; the others are reported with the reason from
  their build log, or the signal that killed the child.

``NEEDLE_OPENCL_DEVICE`` narrows the candidates to those whose label
``"<platform name> [<platform version>] / <device name>"`` or full platform version
(which names the LLVM of a PoCL build) contains it, case insensitive: e.g.
``"PoCL 3.1"``, ``"LLVM 15"``, ``"pthread"``, ``"NVIDIA"``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from . import forking
from .build import build_program

ENV_DEVICE = "NEEDLE_OPENCL_DEVICE"
INSTALL_HINT = (
    "Install an OpenCL driver: on Debian/Ubuntu `apt-get install pocl-opencl-icd ocl-icd-libopencl1` "
    "(runs on the CPU), or your GPU vendor's OpenCL ICD"
)
_SMOKE = "__kernel void needle_smoke(__global float* x) { size_t i = get_global_id(0); x[i] = 2.0f * x[i] + 1.0f; }"


@dataclass(frozen=True)
class Candidate:
    """An OpenCL device as the driver lists it (nothing built yet)."""

    platform_index: int
    device_index: int
    platform: str  # platform name
    version: str  # platform version, tells two PoCL builds apart
    device: str

    @property
    def label(self) -> str:
        return f"{self.platform} [{self.short_version}] / {self.device}"

    @property
    def short_version(self) -> str:
        """``"OpenCL 3.0 PoCL 3.1+debian"``: the version up to its build details."""
        return self.version.split("  ")[0].split(",")[0].strip()

    def matches(self, pattern: str) -> bool:
        pattern = pattern.strip().lower()
        return pattern in self.label.lower() or pattern in self.version.lower()


@dataclass(frozen=True)
class Verdict:
    candidate: Candidate
    ok: bool
    reason: str = ""  # why it cannot be used (from the build log when the compiler failed)


def opencl() -> Any:
    """The ``pyopencl`` module (imported on demand: importing needle never loads it).
    Raises ``ForkedDeviceError`` in a process forked after the driver was started."""
    if forking.inherited():
        forking.refuse()
    import pyopencl

    forking.driver_started()
    return pyopencl


def candidates() -> list[Candidate]:
    """Every device of every platform, in driver order. Cheap: no context, no build."""
    cl = opencl()
    try:
        platforms = cl.get_platforms()
    except cl.Error as exc:
        if "PLATFORM_NOT_FOUND" in str(exc):  # the ICD loader found no driver at all
            return []
        raise
    found = []
    for pi, platform in enumerate(platforms):
        try:
            devices = platform.get_devices()
        except cl.Error:  # a platform with no device (DEVICE_NOT_FOUND) lists nothing
            devices = []
        for di, dev in enumerate(devices):
            found.append(Candidate(pi, di, platform.name.strip(), platform.version.strip(), dev.name.strip()))
    return found


def selected(found: list[Candidate], pattern: str | None = None) -> list[Candidate]:
    """The candidates ``NEEDLE_OPENCL_DEVICE`` (or ``pattern``) allows."""
    pattern = os.environ.get(ENV_DEVICE, "") if pattern is None else pattern
    return [c for c in found if c.matches(pattern)]


def cl_device(candidate: Candidate) -> Any:
    return opencl().get_platforms()[candidate.platform_index].get_devices()[candidate.device_index]


def smoke_test(cl: Any, context: Any, queue: Any) -> None:
    """Build and run the one-line kernel; raises with the driver's message on failure."""
    program = build_program(cl, context, _SMOKE)
    host = np.arange(4, dtype=np.float32)
    buf = cl.Buffer(context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=host)
    cl.Kernel(program, "needle_smoke")(queue, (4,), None, buf)
    out = np.empty_like(host)
    cl.enqueue_copy(queue, out, buf)
    if not np.array_equal(out, 2 * host + 1):
        raise RuntimeError(f"the smoke kernel computed {out.tolist()}, expected {(2 * host + 1).tolist()}")


def failure_reason(exc: BaseException) -> str:
    """One line from a failed build: the first compiler error of the log if any."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() and not ln.lower().startswith("build on")]
    reason = (errors or lines or [type(exc).__name__])[0]
    if len(errors) > 1 and errors[0].rstrip(":").lower().endswith("build_program_failure"):
        reason = errors[1]  # pyopencl's own headline, then the compiler's line
    return reason if len(reason) <= 240 else reason[:237] + "..."


_VERDICTS: dict[Candidate, Verdict] = {}
_RUNTIMES: dict[Candidate, Any] = {}  # the context and program each usable device was verified with


def verdict(candidate: Candidate) -> Verdict:
    """Can ``candidate`` compile and run needle's kernels? Decided once per process.

    A child process (``probe.py``) builds and runs the one-line kernel (a compiler
    that cannot target the CPU fails there, with the reason in its build log), then
    needle's whole program: a driver can run a one-liner and still build a program
    without kernels, or abort the process. Only then does this process open the
    device (its build is then a disk-cache hit); the runtime is kept for the device.
    A device that passed once with the same driver and program is not checked again
    (a marker beside the program cache, ``build.cache_dir()``).
    """
    known = _VERDICTS.get(candidate)
    if known is None:
        marker = _verified_marker(candidate)
        reason = "" if marker is not None and marker.is_file() else check_in_child(candidate)
        if not reason and marker is not None:
            _touch(marker)
        if not reason:
            try:
                _RUNTIMES[candidate] = open_runtime(candidate)
            except Exception as exc:  # any driver failure makes this device unusable, not needle
                reason = failure_reason(exc)
        known = _VERDICTS[candidate] = Verdict(candidate, not reason, reason)
    return known


def _verified_marker(candidate: Candidate) -> Any:
    """The file that records that this device, with this driver, passed the child check
    for this program source: a later process skips the child (about a second). Keyed
    like the program cache, so a new driver or new kernels are verified again."""
    from .build import cache_dir, program_key
    from .render import program_source

    folder = cache_dir()
    if folder is None:
        return None
    try:
        return folder / f"{program_key(cl_device(candidate), program_source())}.verified"
    except Exception:  # a driver that cannot describe the device: always verify
        return None


def _touch(path: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:  # read-only cache: verify again next time
        pass


def child_command(candidate: Candidate) -> list[str]:
    return [sys.executable, "-m", f"{__package__}.probe", str(candidate.platform_index), str(candidate.device_index)]


def _child_env() -> dict[str, str]:
    """This environment, with the folders needle_core and this package were imported from
    first on PYTHONPATH: the child imports the same code even if sys.path was edited."""
    from pathlib import Path

    from needle_core import hookspecs

    roots = {str(Path(f).resolve().parents[1]) for f in (hookspecs.__file__, __file__)}
    paths = [*sorted(roots), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def check_in_child(candidate: Candidate, timeout: float = 600.0) -> str:
    """Run ``probe.py`` on ``candidate`` in a child process: ``""`` or the reason it failed."""
    import signal
    import subprocess

    from .probe import PREFIX

    try:
        done = subprocess.run(
            child_command(candidate), capture_output=True, text=True, timeout=timeout, check=False, env=_child_env()
        )
    except subprocess.TimeoutExpired:
        return f"verifying it took longer than {timeout:.0f} s (the OpenCL compiler hangs?)"
    verdicts = [ln[len(PREFIX) :].strip() for ln in done.stdout.splitlines() if ln.startswith(PREFIX)]
    said = verdicts[-1] if verdicts else ""
    if done.returncode == 0 and said == "ok":
        return ""
    reasons = [said[len("fail") :].strip() or "it failed needle's checks"] if said.startswith("fail") else []
    if done.returncode:
        last = [ln.strip() for ln in done.stderr.splitlines() if ln.strip() and "Warning" not in ln]
        if done.returncode < 0:
            how = f"the OpenCL driver killed the process ({signal.Signals(-done.returncode).name})"
        else:
            how = f"the verification process exited with status {done.returncode}"
        reasons.append(how + (f": {last[-1][:200]}" if last else ""))
    return "; then ".join(reasons) or "the verification process printed no verdict"


def open_runtime(candidate: Candidate) -> Any:
    """Context, queue and program on a device that passed ``check_in_child``."""
    from .runtime import Runtime

    cl = opencl()
    runtime = Runtime(cl, cl_device(candidate))
    runtime.build()  # the checked program, from the disk cache
    return runtime


def kernel_check(runtime: Any) -> None:
    """Run one of needle's own kernels on the runtime's queue and read it back (cheap:
    no build; ``plugin.verify`` runs it on the first use of a device)."""
    from .runtime import Buffer

    buf = Buffer(runtime, 4)
    runtime.launch("fill", (runtime.group(4),), (runtime.group(4),), buf.mem, np.float32(1.5), np.int32(4))
    got = runtime.read(buf, (4,), (1,), 0)
    if not np.array_equal(got, np.full(4, 1.5, np.float32)):
        raise RuntimeError(f"needle's fill kernel computed {got.tolist()}, expected [1.5, 1.5, 1.5, 1.5]")


def runtime(candidate: Candidate) -> Any:
    """The verified ``Runtime`` of a usable candidate."""
    if not verdict(candidate).ok:
        raise RuntimeError(f"OpenCL device {candidate.label} is unusable: {verdict(candidate).reason}")
    return _RUNTIMES[candidate]


def usable() -> list[Candidate]:
    """The selected candidates that pass the smoke test: ``opencl:N`` is the N-th."""
    return [c for c in selected(candidates()) if verdict(c).ok]


def unusable_summary() -> str:
    """Why no selected device is usable (for errors and the device listing)."""
    parts = [f"{v.candidate.label}: {v.reason}" for v in map(verdict, selected(candidates())) if not v.ok]
    return "; ".join(parts) or "no OpenCL device is selected"


def describe() -> list[str]:
    """One line per OpenCL device with its status (builds the one-line kernel on each)."""
    found = candidates()
    if not found:
        return [f"(no OpenCL platform: {INSTALL_HINT})"]
    chosen, index, lines = selected(found), 0, []
    for c in found:
        if c not in chosen:
            lines.append(f"-          {c.label}: not selected by {ENV_DEVICE}")
            continue
        v = verdict(c)
        if v.ok:
            lines.append(f"opencl:{index:<3} {c.label}: usable")
            index += 1
        else:
            lines.append(f"-          {c.label}: unusable ({v.reason})")
    return lines
