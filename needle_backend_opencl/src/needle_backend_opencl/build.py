"""Build an OpenCL program quietly: the driver's log is shown only when asked for.

pyopencl turns any non-empty build log into a ``CompilerWarning``, even for a
build that succeeded. PoCL on CPUs without AVX-512 always logs an ABI note
("AVX vector return of type 'float16' without 'avx512f' enabled"), so without
this every first use, the device listing and the nox probe would print noise.
A failed build still raises pyopencl's error, which carries the full log.
``NEEDLE_OPENCL_VERBOSE=1`` lets the warnings (and so the logs) through.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

ENV_VERBOSE = "NEEDLE_OPENCL_VERBOSE"


def verbose() -> bool:
    return os.environ.get(ENV_VERBOSE, "").strip() not in ("", "0")


def build_program(cl: Any, context: Any, source: str) -> Any:
    """``cl.Program(context, source).build()``, silent on success unless verbose."""
    program = cl.Program(context, source)
    if verbose():
        return program.build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", getattr(cl, "CompilerWarning", UserWarning))
        return program.build()
