"""Runtime ISA dispatch: which compiled module device cpu loads, and the conformance
suite's kernel tests with each ISA variant forced (NEEDLE_CPU_ISA) where this CPU has it."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from needle_backend_cpu import isa, probe

HERE = Path(__file__).resolve().parent

HINT = "rebuild"
ZEN3 = {"sse2", "pni", "ssse3", "sse4_1", "sse4_2", "popcnt", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm",
        "movbe", "adx", "sha_ni"}
ZEN4 = ZEN3 | {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16"}
V3 = ("abm", "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "pni", "popcnt", "sse4_1", "sse4_2", "ssse3")
V4 = (*V3, "avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl")


def build(main: str, main_flags: tuple[str, ...], variants: bool = True):
    modules = {main: ("_kernels", main_flags)}
    if variants:
        modules.update({"avx2": ("_kernels_avx2", V3), "avx512": ("_kernels_avx512", V4)})
    return types.SimpleNamespace(CPU_FLAGS=main_flags, MAIN_ISA=main, MODULES=modules)


NATIVE_ZEN4 = build("native", (*V4, "avx512_bf16", "sha_ni"))
PORTABLE = build("baseline", ())


@pytest.mark.parametrize("info,cpu,expected", [
    (NATIVE_ZEN4, ZEN4, ("native", "_kernels")),
    (NATIVE_ZEN4, ZEN3, ("avx2", "_kernels_avx2")),  # a native build copied to an older CPU
    (PORTABLE, ZEN4, ("avx512", "_kernels_avx512")),
    (PORTABLE, ZEN3, ("avx2", "_kernels_avx2")),
    (PORTABLE, {"sse2"}, ("baseline", "_kernels")),
    (PORTABLE, None, ("avx512", "_kernels_avx512")),  # flags unknown: trust the build
], ids=["native-zen4", "native-on-zen3", "portable-zen4", "portable-zen3", "portable-old", "no-cpuinfo"])
def test_the_best_module_this_cpu_runs_is_chosen(info, cpu, expected):
    choice = isa.choose(info, cpu, None, HINT)
    assert (choice.isa, choice.module) == expected and not choice.reason


def test_forcing_a_variant_loads_it_even_when_a_better_one_exists():
    assert isa.choose(NATIVE_ZEN4, ZEN4, "avx2", HINT).module == "_kernels_avx2"


def test_forcing_a_variant_this_cpu_lacks_says_which_flags_are_missing():
    choice = isa.choose(PORTABLE, ZEN3, "avx512", HINT)
    assert not choice.module and "avx512f" in choice.reason and "NEEDLE_CPU_ISA" in choice.hint


def test_forcing_an_unknown_variant_lists_the_built_ones():
    choice = isa.choose(build("native", V3, variants=False), ZEN4, "avx512", HINT)
    assert not choice.module and "native" in choice.reason and "native" in choice.hint


def test_no_runnable_module_is_refused_with_the_rebuild_hint():
    choice = isa.choose(build("native", V4, variants=False), ZEN3, None, HINT)
    assert not choice.module and "avx512f" in choice.reason and choice.hint == HINT


def test_probe_refuses_a_forced_isa_this_build_lacks(monkeypatch):
    monkeypatch.setenv("NEEDLE_CPU_ISA", "not_an_isa")
    result = probe.probe()
    assert not result.ok and "not_an_isa" in result.reason


def _runnable_variants() -> list[str]:
    try:
        from needle_backend_cpu import _build_info
    except ImportError:
        return []
    have = isa.cpu_flags()
    return [name for name, (_, flags) in isa.built_modules(_build_info).items()
            if have is None or not set(flags) - have]


def _run(code_or_args: list[str], forced: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NEEDLE_CPU_ISA=forced, NEEDLE_TEST_DEVICES="cpu", NEEDLE_NUM_THREADS="2")
    return subprocess.run([sys.executable, *code_or_args], capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.parametrize("forced", _runnable_variants() or ["none-built"])
def test_conformance_kernels_with_each_isa_forced(forced):
    if forced == "none-built":
        pytest.skip("the extension is not built")
    which = _run(["-c", "import needle as ndl; d = ndl.cpu(); print(d.matmul.__module__, d.enabled())"], forced)
    assert which.returncode == 0, which.stderr
    module = isa.built_modules(__import__("needle_backend_cpu._build_info").__dict__["_build_info"])[forced][0]
    assert which.stdout.split() == [f"needle_backend_cpu.{module}", "True"]
    # the suite's kernel tests (every ABI kernel and optional kernel against NumPy)
    done = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "--pyargs", "needle.testing.test_kernels"],
                forced)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    # this backend's GEMM and convolution tests, at the sizes that take every packing
    # path (cpu_kernel_support loads the module the device uses, so the forced one)
    own = [str(HERE / name) for name in ("test_kernels.py", "test_matmul_t.py", "test_conv_grad.py")]
    done = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *own], forced)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
