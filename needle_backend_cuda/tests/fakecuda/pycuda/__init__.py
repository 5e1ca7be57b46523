"""A fake ``pycuda`` for tests on machines without a GPU.

Device memory is host memory (aligned like cudaMalloc, with guard bytes around
every allocation, new memory filled with NaN bytes); ``SourceModule`` compiles the
CUDA source with g++ against ``emu.h``, which runs each block's threads as fibers
with real barrier and warp-shuffle semantics. Only the API needle's runtime uses
is provided. Tests put this folder first on ``sys.path``; never install it.
"""

VERSION = (0, 0, 0)
VERSION_TEXT = "fake"
