"""Fake ``pycuda.compiler.SourceModule``: g++ builds the CUDA source against emu.h.

``prepared_call`` packs arguments with ``struct`` in native layout, as pycuda's
``_pvt_struct`` does, and the emulator unpacks them with the kernel's parameter
types, so a wrong format string or argument order fails loudly.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from . import driver

EMU_H = Path(__file__).resolve().parent.parent / "emu.h"
_SHARED = re.compile(r"__shared__[^;{]*?(\w+)\s*(?:\[|;)")
_KERNEL = re.compile(r'extern "C" __global__ void\s+(?:__launch_bounds__\([^)]*\)\s*)?(\w+)\s*\(')

# Undefined behaviour that a GPU turns into a fault or silent corruption (emu.h
# turns each into a launch error naming the source line), and -fsanitize=thread,
# whose load/store hooks emu.h implements as a shared-memory race checker.
SANITIZE = ("-fsanitize=alignment,bounds,signed-integer-overflow,shift,integer-divide-by-zero", "-fsanitize=thread")


def _build(source: str) -> tuple[ctypes.CDLL, list[str]]:
    names = _KERNEL.findall(source)
    trampolines = "\n".join(
        f'extern "C" int emu_launch_{n}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, '
        f"unsigned bz, const char* buf, size_t len) {{ return emu::launch(&{n}, dim3{{gx, gy, gz}}, "
        f"dim3{{bx, by, bz}}, buf, len); }}"
        for n in names
    )
    full = source + "\n// emulator entry points\n" + trampolines + "\n"
    emu = EMU_H.read_text()
    key = hashlib.sha256((" ".join(SANITIZE) + emu + full).encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / "needle-fakecuda"
    cache.mkdir(exist_ok=True)
    lib = cache / f"{key}.so"
    if not lib.exists():
        src = cache / f"{key}.cc"
        src.write_text(full)
        tmp = cache / f"{key}.{id(src)}.so"
        obj = tmp.with_suffix(".o")
        compile_cmd = ["g++", "-std=c++17", "-O1", "-fno-strict-aliasing", "-fPIC", "-w", *SANITIZE,
                       "-include", str(EMU_H), "-x", "c++", "-c", str(src), "-o", str(obj)]
        # no libubsan/libtsan: emu.h defines the hooks; --no-undefined names a missing one now
        link_cmd = ["g++", "-shared", "-Wl,--no-undefined", str(obj), "-o", str(tmp)]
        for cmd in (compile_cmd, link_cmd):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise driver.Error(f"emulator build failed:\n{proc.stderr}")
        obj.unlink()
        tmp.replace(lib)
    handle = ctypes.CDLL(str(lib))
    _watch_shared(handle, lib, set(_SHARED.findall(source)))
    return handle, full.splitlines()


def _watch_shared(handle: ctypes.CDLL, path: Path, names: set[str]) -> None:
    """Hand the race checker (emu.h) the address ranges of the ``__shared__`` variables.

    They are function-local statics; ``nm -C`` lists them as ``function::name``.
    """
    if not names:
        return
    proc = subprocess.run(["nm", "-C", "-S", "--defined-only", str(path)], capture_output=True, text=True, check=True)
    symbols: dict[str, int] = {}
    ranges: list[int] = []
    for line in proc.stdout.splitlines():
        parts = line.split(maxsplit=3)
        symbols[parts[-1]] = int(parts[0], 16)
        if len(parts) == 4 and parts[2] in "bBdDu" and "::" in parts[3]:
            owner, _, var = parts[3].rpartition("::")
            if var in names and not owner.startswith(("emu::", "std::")):
                ranges += [int(parts[0], 16), int(parts[1], 16)]
    base = ctypes.cast(handle.emu_watch, ctypes.c_void_p).value - symbols["emu_watch"]
    ranges[0::2] = [base + offset for offset in ranges[0::2]]
    flat = np.asarray(ranges, dtype=np.uint64)
    handle.emu_watch(ctypes.c_void_p(flat.ctypes.data), len(ranges) // 2)


class Function:
    def __init__(self, lib: ctypes.CDLL, name: str, lines: list[str]) -> None:
        self.name = name
        self._lib = lib
        self._lines = lines
        self._entry = getattr(lib, f"emu_launch_{name}")
        self._entry.restype = ctypes.c_int
        self._entry.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_char_p, ctypes.c_size_t]
        self.arg_format: str | None = None

    def prepare(self, arg_types) -> Function:
        self.arg_format = "".join(arg_types)
        return self

    def prepared_call(self, grid, block, *args, shared_size: int = 0) -> None:
        if self.arg_format is None:
            raise driver.LogicError(f"{self.name}: prepared_call before prepare")
        if len(grid) != 3 or len(block) != 3:
            raise driver.LogicError(f"{self.name}: expected 3-tuples, got grid={grid} block={block}")
        for value in (*grid, *block):
            if not isinstance(value, int):
                raise driver.LogicError(f"{self.name}: grid/block entries must be ints, got {grid} {block}")
        buf = struct.pack("@" + self.arg_format, *args)
        bands = driver.guard_bands([v for c, v in zip(self.arg_format, args, strict=True) if c == "P"])
        # a NumPy buffer, not a ctypes array type per length: those are new types in reference cycles
        flat = np.asarray(bands, dtype=np.uint64)
        self._lib.emu_set_guards(ctypes.c_void_p(flat.ctypes.data), len(bands) // 4)
        if self._entry(*grid, *block, buf, len(buf)) != 0:
            error = ctypes.cast(self._lib.emu_last_error(), ctypes.c_char_p).value.decode()
            line = re.search(r"at source line (\d+)", error)
            if line and 0 < int(line.group(1)) <= len(self._lines):
                error += f": {self._lines[int(line.group(1)) - 1].strip()}"
            raise driver.LogicError(f"{self.name}: {error}")
        driver.check_guards()


class SourceModule:
    def __init__(self, source: str, nvcc: str = "nvcc", options=None, keep: bool = False,
                 no_extern_c: bool = False, arch=None, code=None, cache_dir=None, include_dirs=None) -> None:
        if not no_extern_c:
            raise driver.LogicError("needle's sources carry their own extern \"C\": expected no_extern_c=True")
        self._lib, self._lines = _build(source)
        self._lib.emu_last_error.restype = ctypes.c_void_p

    def get_function(self, name: str) -> Function:
        if not hasattr(self._lib, f"emu_launch_{name}"):
            raise driver.LogicError(f"no kernel named {name!r} in the module")
        return Function(self._lib, name, self._lines)
