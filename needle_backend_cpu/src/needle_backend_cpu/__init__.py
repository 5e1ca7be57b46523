"""needle's C++ CPU backend: device ``cpu`` (``ndl.cpu()``).

The kernels live in the compiled extension ``needle_backend_cpu._kernels``; the
registry reaches them through the entry point ``needle.backends`` -> ``cpu`` =
:mod:`needle_backend_cpu.plugin`. Importing this package does not load the extension
(the plugin's probe first checks that this CPU has the instructions it was built for).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "load_kernels"]


def load_kernels():
    """The compiled kernel module (imports the extension)."""
    from . import _kernels

    return _kernels
