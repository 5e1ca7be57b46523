"""Build OpenCL programs: quietly, and once per machine (an on-disk binary cache).

Quiet: pyopencl turns any non-empty build log into a ``CompilerWarning``, even for a
build that succeeded. PoCL on CPUs without AVX-512 always logs an ABI note, so without
this every first use, the device listing and the nox probe would print noise. A failed
build still raises pyopencl's error, which carries the full log.
``NEEDLE_OPENCL_VERBOSE=1`` lets the warnings (and so the logs) through.

Cached: ``cached_program`` keeps the driver's binary of a program in
``NEEDLE_OPENCL_CACHE_DIR`` (default ``~/.cache/needle/opencl``; ``off`` disables it),
under a key made of the platform, device, driver version and a hash of the source and
options. A second process loads the binary instead of compiling: a new driver, device
or source is a new key. ``STATS`` counts compiles and loads (tests count builds by it).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

ENV_VERBOSE = "NEEDLE_OPENCL_VERBOSE"
ENV_CACHE = "NEEDLE_OPENCL_CACHE_DIR"

#: Programs compiled from source and loaded from the disk cache, in this process.
STATS = {"compiled": 0, "loaded": 0}


def verbose() -> bool:
    return os.environ.get(ENV_VERBOSE, "").strip() not in ("", "0")


def cache_dir() -> Path | None:
    """Where program binaries are kept, or ``None`` when caching is off."""
    value = os.environ.get(ENV_CACHE, "").strip()
    if value.lower() in ("off", "0", "none"):
        return None
    if value:
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "needle" / "opencl"


def device_key(device: Any) -> str:
    """What makes a binary valid: platform, device and driver (versions included)."""
    platform = device.platform
    return "\n".join([platform.name, platform.version, device.name, device.version, device.driver_version])


def program_key(device: Any, source: str, options: str = "") -> str:
    text = "\n".join([device_key(device), options, source])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def _quietly(build: Any) -> Any:
    if verbose():
        return build()
    import pyopencl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pyopencl.CompilerWarning)
        return build()


def build_program(cl: Any, context: Any, source: str, options: str = "") -> Any:
    """Compile ``source`` for ``context`` (pyopencl's own cache may serve it), silent on
    success unless verbose; a failed build raises with the driver's log."""
    program = cl.Program(context, source)
    return _quietly(lambda: program.build(options=options))


def _compile(cl: Any, context: Any, source: str, options: str) -> Any:
    """A real compile from source (bypassing pyopencl's cache, so STATS is honest)."""
    raw = getattr(getattr(cl, "_cl", None), "_Program", None)
    program = cl.Program(raw(context, source)) if raw is not None else cl.Program(context, source)
    program = _quietly(lambda: program.build(options=options))
    STATS["compiled"] += 1
    return program


def cached_program(cl: Any, context: Any, device: Any, source: str, options: str = "") -> Any:
    """The built program of ``source`` on ``device``: from the disk cache when the same
    source was built with the same driver before, else compiled and stored."""
    folder = cache_dir()
    if folder is None:
        return _compile(cl, context, source, options)
    path = folder / f"{program_key(device, source, options)}.bin"
    if path.is_file():
        try:
            binary = path.read_bytes()
            program = _quietly(lambda: cl.Program(context, [device], [binary]).build(options=options))
            STATS["loaded"] += 1
            return program
        except Exception:  # truncated or rejected by the driver: rebuild and overwrite
            pass
    program = _compile(cl, context, source, options)
    try:
        (binary,) = program.get_info(cl.program_info.BINARIES)
        if binary:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as tmp:
                tmp.write(binary)
            os.replace(tmp.name, path)  # atomic: a concurrent process sees all or nothing
    except OSError:  # a read-only home: the program still works, the next process rebuilds
        pass
    return program
