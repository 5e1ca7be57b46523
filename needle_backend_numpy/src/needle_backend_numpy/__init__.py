"""needle's reference backend in NumPy (device ``cpu_numpy``, alias ``numpy``).

The oracle every other backend is compared with. Kernels live in ``kernels``; the
pluggy hook that declares the device lives in ``plugin``.
"""

__version__ = "0.1.0"
