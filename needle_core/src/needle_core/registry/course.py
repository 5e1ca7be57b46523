"""The course's device names, and every special case needle makes for them, in one place.

Course code (CMU 10-414/714) asks for devices as ``ndl.cpu()``, ``ndl.cuda()`` and
``nd.cpu_numpy()``, lists them with ``all_devices()`` and sees them printed as
``cpu()``. needle keeps all of that working whatever is installed; the rest of the
registry treats every device type alike. What is name-specific:

- ``cpu()``, ``cuda(index)``, ``cpu_numpy()`` never raise: a backend that is missing or
  cannot run gives a disabled device (``enabled()`` False) that says what to install;
- ``COURSE_DEVICES`` come first in ``all_devices()`` (disabled ones included: course
  tests skip them by ``enabled()``) and print as ``cpu()``, ``cuda(1)`` (``course_repr``);
- ``IMPLICIT_DEFAULTS`` is the default device without ``NEEDLE_DEVICE``: ``cpu``, else
  ``cpu_numpy`` (an accelerator is never picked implicitly);
- ``REFERENCE`` is the NumPy oracle: suggested when another device cannot run
  (``reference_suggestion``) and the reference ``needle_core.tools.check`` compares with;
- ``PACKAGES`` names the distribution to install per well-known device type.
"""

from __future__ import annotations

from ..device import Device
from .hints import install_command
from .state import STATE

COURSE_DEVICES: tuple[str, ...] = ("cpu", "cuda", "cpu_numpy")
IMPLICIT_DEFAULTS: tuple[str, ...] = ("cpu", "cpu_numpy")
REFERENCE = "cpu_numpy"
#: well-known device type -> the distribution that provides it (install hints)
PACKAGES: dict[str, str] = {
    "cpu": "needle-backend-cpu",
    "cuda": "needle-backend-cuda",
    "cpu_numpy": "needle-backend-numpy",
    "opencl": "needle-backend-opencl",
}


def soft(name: str) -> Device:
    """The device ``name``, disabled (not raising) when it cannot run; cached per name."""
    found = STATE.soft.get(name)
    if found is None:
        from .resolve import resolve  # resolve.py imports this module

        found = STATE.soft[name] = resolve(STATE, name, soft=True)
    return found


def cpu() -> Device:
    """The compiled CPU device; disabled (``enabled()`` False) if it cannot run here."""
    return soft("cpu")


def cuda(index: int = 0) -> Device:
    """The CUDA device ``index``; disabled (``enabled()`` False) if it cannot run here."""
    return soft(f"cuda:{index}" if index else "cuda")


def cpu_numpy() -> Device:
    """The NumPy reference device (alias ``numpy``)."""
    return soft(REFERENCE)


def implicit_default() -> Device:
    """The default device when ``NEEDLE_DEVICE`` is unset: the first usable of ``IMPLICIT_DEFAULTS``."""
    for name in IMPLICIT_DEFAULTS[:-1]:
        chosen = soft(name)
        if chosen.enabled():
            return chosen
    return soft(IMPLICIT_DEFAULTS[-1])


def course_first(others: set[str]) -> list[Device]:
    """``all_devices()``: the course's devices, then every other installed type by name."""
    return [cpu(), cuda(), cpu_numpy(), *(soft(name) for name in sorted(others - set(COURSE_DEVICES)))]


def course_repr(type_name: str, index: int) -> str | None:
    """``cpu()`` / ``cuda(1)`` for the course's devices; None for any other type."""
    if type_name not in COURSE_DEVICES:
        return None
    return f"{type_name}({index})" if index else f"{type_name}()"


def reference_suggestion(type_name: str) -> str:
    """What to use instead when ``type_name`` cannot run (nothing for the reference itself)."""
    return "" if type_name == REFERENCE else f" The NumPy reference device works everywhere: ndl.{REFERENCE}()."


def install_fix(type_name: str) -> str:
    """The hint of a device type no installed backend provides."""
    package = PACKAGES.get(type_name)
    if package:
        return f"Install it: {install_command(package)}."
    return f"Install the backend package that provides {type_name!r}."
