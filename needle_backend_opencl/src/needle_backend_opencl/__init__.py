"""needle-backend-opencl: the ``opencl`` device, OpenCL kernels driven through pyopencl.

Runs wherever an OpenCL driver (ICD) is installed; on a CPU-only Debian machine that
is PoCL: ``apt-get install pocl-opencl-icd ocl-icd-libopencl1``. Importing this
package imports neither pyopencl nor any OpenCL runtime: the registry reaches it
through the entry point in ``plugin.py``.
"""

__version__ = "0.1.0"
