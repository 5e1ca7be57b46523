"""needle's C++ CPU backend: device ``cpu`` (``ndl.cpu()``).

The kernels live in the compiled extension ``needle_backend_cpu._kernels`` (and its
ISA variants ``_kernels_avx2``/``_kernels_avx512``, chosen at run time); the
registry reaches them through the entry point ``needle.backends`` -> ``cpu`` =
:mod:`needle_backend_cpu.plugin`. Importing this package does not load the extension
(the probe first checks that this CPU has the instructions it was built for).
Role files: ``plugin.py`` (hooks), ``kernels.py`` (the namespace), ``runtime.py``
(module loading), ``probe.py``, ``render.py`` (the elementwise header), ``isa.py``.
"""

from __future__ import annotations

from .runtime import load_kernels

__version__ = "0.1.0"
__all__ = ["__version__", "load_kernels"]
