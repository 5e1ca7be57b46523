"""needle-backend-cuda: the ``cuda`` device, CUDA kernels driven through pycuda.

Importing this package (or its plugin module) never imports pycuda: the probe
checks for it, and only the device factory loads it. See GPU_CHECKLIST.md for the
steps on a machine with an NVIDIA GPU.
"""

__version__ = "0.1.0"
