"""needle's C++ CPU backend: device ``cpu`` (``ndl.cpu()``).

The kernels live in the compiled extension ``needle_backend_cpu._kernels`` (and its
ISA variants ``_kernels_avx2``/``_kernels_avx512``, chosen at run time); the
registry reaches them through the entry point ``needle.backends`` -> ``cpu`` =
:mod:`needle_backend_cpu.plugin`. Importing this package does not load the extension
(the plugin's probe first checks that this CPU has the instructions it was built for).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "load_kernels"]


def load_kernels():
    """The compiled kernel module device ``cpu`` uses here (the best ISA variant this
    CPU runs, or the one ``NEEDLE_CPU_ISA`` names); imports the extension."""
    import importlib

    from .plugin import choose_module

    choice = choose_module()
    if not choice.module:
        raise ImportError(f"needle_backend_cpu: {choice.reason}; {choice.hint}")
    return importlib.import_module(f"{__name__}.{choice.module}")
