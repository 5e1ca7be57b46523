"""needle-backend-cuda: the ``cuda`` device, CUDA kernels driven through pycuda.

Files by role (docs/backends.md §4, Package layout): ``plugin`` (the DeviceSpec
and hook), ``kernels`` (the namespace), ``runtime`` (context, pool, modules),
``probe``, ``render`` (sources from the tables and ``cuda/*.cu``); jobs: ``layout``
(packing views for the kernels), ``compile_check`` (nvcc over every module).

Importing this package (or its plugin module) never imports pycuda: the probe
checks for it, and only the device factory loads it. See GPU_CHECKLIST.md for the
steps on a machine with an NVIDIA GPU.
"""

__version__ = "0.1.0"
