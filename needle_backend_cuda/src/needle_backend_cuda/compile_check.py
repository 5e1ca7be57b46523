"""Render every CUDA module to ``.cu`` files and compile each with ``nvcc -ptx``.

CI's CUDA check (no GPU, no pycuda needed): a syntax or type error in a template,
or a table row whose expression does not compile, fails here. It also rejects
PTX that computes in double precision (an unsuffixed literal such as ``0.5`` in a
float kernel) and checks that every kernel the backend launches is defined.

    python -m needle_backend_cuda.compile_check [--arch sm_80 --arch sm_90] [--out DIR]

Exit status 0 when every module compiles for every arch, 1 on a failure, 2 when
nvcc is not found.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .probe import find_nvcc
from .render import all_sources, kernel_names

DEFAULT_ARCHS: tuple[str, ...] = ("sm_80", "sm_90")
_WHERE = "PATH, $CUDA_HOME/bin, /usr/local/cuda/bin"
# Double-precision arithmetic or conversions in PTX (loads/stores of f64 never occur here).
_F64 = re.compile(r"^\s*((?:@!?%p\d+\s+)?\w+(?:\.\w+)*\.f64\b[^\n]*)", re.MULTILINE)
# CUDA's own sinf/cosf reduce huge arguments (Payne-Hanek) with one double multiply by
# pi/2 * 2^-64 (0d3BF921FB54442D19): three instructions of the library, not a promotion.
_LIBM_TRIG = re.compile(
    r"cvt\.rn\.f64\.s64\s+(%fd\d+), %rd\d+;\s*mul\.f64\s+(%fd\d+), \1, 0d3BF921FB54442D19;"
    r"\s*cvt\.rn\.f32\.f64\s+%f\d+, \2;"
)


@dataclass(frozen=True)
class CompileResult:
    module: str
    arch: str
    ok: bool
    message: str  # nvcc's diagnostics, or why the PTX was rejected
    ptx: Path | None


def write_sources(out_dir: Path) -> dict[str, Path]:
    """Write each module's full source to ``out_dir/<module>.cu``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, src in all_sources().items():
        path = out_dir / f"{name}.cu"
        path.write_text(src, encoding="utf-8")
        paths[name] = path
    return paths


def compile_module(nvcc: str, cu: Path, arch: str) -> CompileResult:
    """``nvcc -ptx -arch=<arch>`` one file; then sanity-check the PTX."""
    ptx = cu.with_name(f"{cu.stem}.{arch}.ptx")
    cmd = [nvcc, "-ptx", f"-arch={arch}", "-std=c++17", "-Werror", "all-warnings", "-o", str(ptx), str(cu)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return CompileResult(cu.stem, arch, False, (proc.stderr or proc.stdout).strip(), None)
    text = ptx.read_text(encoding="utf-8")
    entries = set(re.findall(r"\.entry\s+(\w+)", text))
    missing = sorted(set(kernel_names(cu.read_text(encoding="utf-8"))) - entries)
    if missing:
        return CompileResult(cu.stem, arch, False, f"kernels missing from the PTX: {missing}", ptx)
    doubles = _F64.findall(_LIBM_TRIG.sub("", text))
    if doubles:
        return CompileResult(
            cu.stem, arch, False,
            f"PTX computes in double precision ({len(doubles)} instructions, e.g. {doubles[0].strip()!r}): "
            "use float literals (1.0f) and float math in kernel expressions",
            ptx,
        )
    return CompileResult(cu.stem, arch, True, "", ptx)


@dataclass(frozen=True)
class KernelResources:
    kernel: str
    registers: int
    shared_bytes: int
    spill_bytes: int  # spill stores + loads: local-memory traffic that costs bandwidth


_ENTRY = re.compile(r"Compiling entry function '(\w+)'")
_USED = re.compile(r"Used (\d+) registers.*?(?:(\d+) bytes smem)?$")
_SPILL = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def resources(nvcc: str, cu: Path, arch: str) -> list[KernelResources]:
    """Per-kernel registers, static shared memory and spills from ``ptxas -v``."""
    cubin = cu.with_name(f"{cu.stem}.{arch}.cubin")
    cmd = [nvcc, "-cubin", f"-arch={arch}", "-std=c++17", "-Xptxas", "-v", "-o", str(cubin), str(cu)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"nvcc -cubin {cu.name} failed:\n{proc.stderr}")
    out, kernel, spill = [], None, 0
    for line in proc.stderr.splitlines():
        if m := _ENTRY.search(line):
            kernel, spill = m.group(1), 0
        elif (m := _SPILL.search(line)) and kernel:
            spill = int(m.group(1)) + int(m.group(2))
        elif (m := _USED.search(line)) and kernel:
            out.append(KernelResources(kernel, int(m.group(1)), int(m.group(2) or 0), spill))
            kernel = None
    return out


def compile_all(out_dir: Path, archs: tuple[str, ...] = DEFAULT_ARCHS, nvcc: str | None = None) -> list[CompileResult]:
    nvcc = nvcc or find_nvcc()
    if nvcc is None:
        raise FileNotFoundError(f"nvcc not found ({_WHERE}): install the CUDA toolkit")
    paths = write_sources(out_dir)
    return [compile_module(nvcc, path, arch) for path in paths.values() for arch in archs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m needle_backend_cuda.compile_check", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--arch", action="append", help=f"target arch (repeatable; default {' '.join(DEFAULT_ARCHS)})")
    parser.add_argument("--out", type=Path, help="keep the .cu and .ptx files here (default: a temporary folder)")
    args = parser.parse_args(argv)
    archs = tuple(args.arch or DEFAULT_ARCHS)
    nvcc = find_nvcc()
    if nvcc is None:
        print(f"compile_check: nvcc not found ({_WHERE}); nothing compiled", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="needle-cuda-") as tmp:
        out = args.out or Path(tmp)
        results = compile_all(out, archs, nvcc)
        for r in results:
            print(f"{'ok  ' if r.ok else 'FAIL'} {r.module:12s} {r.arch}")
            if not r.ok:
                print("    " + r.message.replace("\n", "\n    "))
        failed = [r for r in results if not r.ok]
        print(f"compile_check: {len(results) - len(failed)} passed, {len(failed)} failed ({nvcc}; sources in {out})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
