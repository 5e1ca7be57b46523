"""The noxfile's device probe: can this environment use device NAME, and if not, why?

The verdict is the probe's exit status alone; the reason is the one stdout line
after ``REASON``. Whatever else the child prints (a driver's ``CompilerWarning`` on
stderr, say: PoCL logs an ABI note on CPUs without AVX-512) never decides anything.
Kept apart from ``noxfile.py`` so tests can import it without nox.
"""

from __future__ import annotations

import os
import subprocess

REASON = "needle-probe-reason:"
UNUSABLE = 3  # the probe's exit status for "not installed, broken or unavailable"

SCRIPT = f"""
import sys
def unusable(reason):
    print({REASON!r}, (reason.strip().splitlines() or ["no reason given"])[0], flush=True)
    sys.exit({UNUSABLE})
try:
    import needle as ndl
    dev = ndl.device(sys.argv[1])
except Exception as exc:  # not installed, broken or unavailable: say why
    unusable(str(exc) or type(exc).__name__)
if not dev.enabled():
    unusable(dev.unavailable_message())
"""


def verdict(returncode: int, stdout: str, stderr: str = "") -> tuple[bool, str]:
    """``(usable, reason)`` from the probe's exit status and its reason line."""
    if returncode == 0:
        return True, ""
    reasons = [ln[len(REASON) :].strip() for ln in stdout.splitlines() if ln.startswith(REASON)]
    if reasons:
        return False, reasons[-1]
    last = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return False, f"the probe exited with status {returncode}" + (f": {last[-1]}" if last else "")


def probe(python: str, device: str, env: dict[str, str] | None = None) -> tuple[bool, str, str]:
    """Run the probe with interpreter ``python``: ``(usable, reason, stderr)``."""
    done = subprocess.run([python, "-c", SCRIPT, device], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)
    usable, reason = verdict(done.returncode, done.stdout, done.stderr)
    return usable, reason, done.stderr
