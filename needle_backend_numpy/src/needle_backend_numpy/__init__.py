"""needle's reference backend in NumPy (device ``cpu_numpy``, alias ``numpy``).

The oracle every other backend is compared with. Its files follow the backend
layout of docs/backends.md §4: ``plugin`` (the DeviceSpec and hook), ``kernels`` (the
namespace), ``render`` (the elementwise table bound to ufuncs), ``runtime`` (NumPy's
floating-point error state), ``probe``.
"""

__version__ = "0.1.0"
