"""Build the C++ extension ``needle_backend_cpu._kernels``.

Flags: ``-O3 -march=native`` by default (the machine it is installed on), never
fast-math. ``NEEDLE_CPU_PORTABLE=1`` drops ``-march=native`` for wheels that must run
on any x86-64.

A portable build on x86-64 also compiles the same sources as ISA variants, one
extension module each (``_kernels_avx2`` with ``-march=x86-64-v3``,
``_kernels_avx512`` with ``-march=x86-64-v4``), and the plugin loads the best one this
CPU runs (cpuid flags via /proc/cpuinfo), so a portable build is as fast as a native
one. A native build is already the best code for the machine it is built on, so by
default it compiles the main module only (one compile: the quick start stays quick);
``NEEDLE_CPU_VARIANTS=avx2,avx512`` adds the variants to any build (CI does, to run
the conformance kernels with each ISA forced), ``NEEDLE_CPU_VARIANTS=none`` drops them. The build records every
module's instruction-set extensions (``_build_info.py``), so the plugin never loads a
module this CPU lacks the instructions for: it picks another or says why.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
import tempfile
from pathlib import Path

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

HERE = Path(__file__).resolve().parent
PORTABLE = os.environ.get("NEEDLE_CPU_PORTABLE", "") not in ("", "0")

# compiler macro -> /proc/cpuinfo flag, for the ISA extensions -march may enable
ISA_MACROS = {
    "__SSE3__": "pni", "__SSSE3__": "ssse3", "__SSE4_1__": "sse4_1", "__SSE4_2__": "sse4_2",
    "__POPCNT__": "popcnt", "__AVX__": "avx", "__AVX2__": "avx2", "__FMA__": "fma",
    "__F16C__": "f16c", "__BMI__": "bmi1", "__BMI2__": "bmi2", "__LZCNT__": "abm",
    "__MOVBE__": "movbe", "__ADX__": "adx", "__SHA__": "sha_ni", "__GFNI__": "gfni",
    "__VAES__": "vaes", "__VPCLMULQDQ__": "vpclmulqdq", "__AVXVNNI__": "avx_vnni",
    "__AVX512F__": "avx512f", "__AVX512CD__": "avx512cd", "__AVX512BW__": "avx512bw",
    "__AVX512DQ__": "avx512dq", "__AVX512VL__": "avx512vl", "__AVX512IFMA__": "avx512ifma",
    "__AVX512VBMI__": "avx512vbmi", "__AVX512VBMI2__": "avx512_vbmi2",
    "__AVX512VNNI__": "avx512_vnni", "__AVX512BF16__": "avx512_bf16",
    "__AVX512BITALG__": "avx512_bitalg", "__AVX512VPOPCNTDQ__": "avx512_vpopcntdq",
    "__AVX512FP16__": "avx512_fp16",
}


def cxx() -> list[str]:
    return shlex.split(os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "c++")


def arch_flags() -> list[str]:
    return [] if PORTABLE else ["-march=native"]


# ISA variant -> -march; each becomes the module _kernels_<name> (x86-64 only)
ISA_VARIANTS = {"avx2": ["-march=x86-64-v3"], "avx512": ["-march=x86-64-v4"]}


def variants() -> dict[str, list[str]]:
    """The ISA variants to build: NEEDLE_CPU_VARIANTS (comma list, or none); by default all
    of them for a portable build, none for a native one."""
    if sysconfig.get_platform().split("-")[-1] not in ("x86_64", "amd64"):
        return {}
    raw = os.environ.get("NEEDLE_CPU_VARIANTS", ",".join(ISA_VARIANTS) if PORTABLE else "none").strip()
    names = [] if raw.lower() in ("", "none", "0") else [v.strip() for v in raw.split(",") if v.strip()]
    unknown = sorted(set(names) - set(ISA_VARIANTS))
    if unknown:
        raise SystemExit(f"NEEDLE_CPU_VARIANTS: unknown variant(s) {unknown}; expected a comma list of "
                         f"{sorted(ISA_VARIANTS)} or 'none'")
    return {name: ISA_VARIANTS[name] for name in names}


def enabled_isa(flags: list[str]) -> list[str]:
    """cpuinfo names of the ISA extensions the compiler may emit with ``flags``."""
    out = subprocess.run([*cxx(), *flags, "-dM", "-E", "-x", "c++", os.devnull],
                         capture_output=True, text=True, check=True).stdout
    defined = {line.split()[1] for line in out.splitlines() if line.startswith("#define ")}
    return sorted(flag for macro, flag in ISA_MACROS.items() if macro in defined)


def links(flags: list[str], source: str, libs: list[str]) -> bool:
    """Whether a tiny program compiles and links (used to detect glibc's libmvec)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "t.cpp")
        src.write_text(source)
        res = subprocess.run([*cxx(), *flags, str(src), "-o", str(Path(tmp, "t")), *libs],
                             capture_output=True)
        return res.returncode == 0


MVEC_TEST = f"""
#include "{(HERE / "csrc" / "simd.h").as_posix()}"
int main() {{ vfloat x = {{}}; x = needle::mvec_exp(x) + needle::mvec_log(x + 1.0f)
  + needle::mvec_tanh(x) + needle::mvec_pow(x, x); return (int)x[0]; }}
"""


class BuildExt(build_ext):
    def build_extensions(self) -> None:
        self.modules: dict[str, tuple[str, list[str], list[str], bool]] = {}
        base_temp = self.build_temp
        for ext in self.extensions:
            isa_name = ext.isa_name
            flags = ["-O3", *(ISA_VARIANTS[isa_name] if isa_name in ISA_VARIANTS else arch_flags())]
            has_mvec = links([*flags, "-std=c++20", "-DNEEDLE_HAVE_LIBMVEC=1"], MVEC_TEST, ["-lmvec"])
            ext.extra_compile_args += [*flags, "-fno-math-errno"]
            if has_mvec:
                ext.define_macros.append(("NEEDLE_HAVE_LIBMVEC", "1"))
                ext.libraries.append("mvec")
            self.modules[isa_name] = (ext.name.rpartition(".")[2], enabled_isa(flags), flags, has_mvec)
        for ext in self.extensions:  # one object directory per variant: same sources, other flags
            self.build_temp = os.path.join(base_temp, ext.isa_name)
            self.build_extension(ext)
        self.build_temp = base_temp
        # next to the built modules, and in the source tree for editable installs
        targets = {Path(self.get_ext_fullpath(self.extensions[0].name)).parent}
        if self.inplace or getattr(self, "editable_mode", False):
            targets.add(HERE / "src" / "needle_backend_cpu")
        self.write_build_info(targets)

    def run(self) -> None:
        super().run()
        if self.inplace:  # `setup.py build_ext --inplace` copies the modules into src/ after building
            self.write_build_info({HERE / "src" / "needle_backend_cpu"})

    def write_build_info(self, targets: set[Path]) -> None:
        main = MAIN_ISA
        _, isa, flags, has_mvec = self.modules[main]
        table = "".join(f"    {name!r}: ({mod!r}, {tuple(fl)!r}),\n" for name, (mod, fl, _, _) in self.modules.items())
        for target in targets:
            target.mkdir(parents=True, exist_ok=True)
            (target / "_build_info.py").write_text(
                '"""Written by setup.py at build time: how the extension modules were compiled."""\n\n'
                f"CPU_FLAGS = {tuple(isa)!r}\n"
                f"PORTABLE = {PORTABLE!r}\n"
                f"COMPILE_FLAGS = {tuple(flags)!r}\n"
                f"LIBMVEC = {has_mvec!r}\n"
                f"MAIN_ISA = {main!r}\n"
                "# ISA name -> (module in this package, the CPU flags it needs)\n"
                f"MODULES = {{\n{table}}}\n"
            )


ParallelCompile("NEEDLE_BUILD_JOBS", default=0).install()

SOURCES = sorted(str(p.relative_to(HERE)) for p in (HERE / "csrc").glob("*.cpp"))
MAIN_ISA = "baseline" if PORTABLE else "native"


def extension(isa_name: str, module: str) -> Pybind11Extension:
    ext = Pybind11Extension(
        f"needle_backend_cpu.{module}",
        SOURCES,
        include_dirs=["csrc"],
        cxx_std=20,
        extra_link_args=["-pthread"],
        define_macros=[("NEEDLE_MODULE_NAME", module), ("NEEDLE_ISA_NAME", f'"{isa_name}"')],
    )
    ext.isa_name = isa_name
    return ext


extensions = [extension(MAIN_ISA, "_kernels")]
extensions += [extension(name, f"_kernels_{name}") for name in variants()]
setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
