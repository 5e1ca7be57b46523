"""SGEMM against the machine's FMA peak, and the cpu backend's ISA variants.

For each SGEMM shape of issue-level interest (256, 512, 1000, 1024, 2048 square and the
MLP's 100×784 @ 784×100): NumPy, then for every compiled module of ``needle_backend_cpu``
this CPU runs (``native`` = ``-march=native``, ``avx512`` = ``-march=x86-64-v4``, ``avx2``
= ``-march=x86-64-v3``; a portable build loads the best of the latter two):

* ``FMA peak <isa>``: independent vector FMA chains on the same threads, doing the same
  number of FLOPs as the SGEMM (``_fma_peak``), so ``needle ÷ FMA peak`` is
  1 / (fraction of peak) and the throughput column is the peak in GFLOP/s;
* ``needle cpu <isa>``: the module's ``matmul`` kernel on its own buffers, compared
  with NumPy, with the FMA peak at that ISA, and (variants) with the native module:
  ``÷ needle cpu native`` is time(portable) ÷ time(native).

One elementwise row group (``ewise_exp`` over 2^22 floats) shows the same split for
the elementwise kernels.
"""

from __future__ import annotations

import importlib

import numpy as np
from harness import Row

SHAPES = [(256, 256, 256), (512, 512, 512), (1000, 1000, 1000), (1024, 1024, 1024), (2048, 2048, 2048),
          (100, 784, 100)]
N_EXP = 1 << 22


def modules() -> tuple[dict[str, object], str] | str:
    """ISA name -> loaded kernel module for every module this CPU runs, and the name the
    plugin picks; or why there are none."""
    try:
        from needle_backend_cpu import _build_info, isa, runtime
    except ImportError as exc:
        return f"needle_backend_cpu not built: {exc}"
    have = isa.cpu_flags()
    picked = runtime.choose_module()
    out = {}
    for name, (module, flags) in isa.built_modules(_build_info).items():
        if have is not None and set(flags) - have:
            continue
        mod = importlib.import_module(f"needle_backend_cpu.{module}")
        mod.set_num_threads(runtime.threads_from_env())
        out[name] = mod
    return (out, picked.isa) if out else "no module of this build runs on this CPU"


def _put(mod, array: np.ndarray):
    buf = mod.Array(array.size)
    mod.from_numpy(np.ascontiguousarray(array, dtype=np.float32), buf)
    return buf


def _sgemm_rows(found: dict[str, object], picked: str) -> list[Row]:
    rng = np.random.default_rng(0)
    out: list[Row] = []
    for m, n, p in SHAPES:
        a, b = rng.standard_normal((m, n), dtype=np.float32), rng.standard_normal((n, p), dtype=np.float32)
        c = np.empty((m, p), np.float32)
        flops = 2.0 * m * n * p
        group, stem = f"SGEMM {m}×{n} @ {n}×{p} fp32 vs FMA peak", f"isa {m}x{n}x{p}"
        out.append(Row(group, "numpy", lambda a=a, b=b, c=c: np.matmul(a, b, out=c), key=f"{stem} numpy",
                       work=flops / 1e9, work_unit="GFLOP/s", interleave=True))
        for name, mod in found.items():
            threads = mod.get_num_threads()
            iters = max(1, round(flops / (2 * mod._simd_width * _chains(mod) * threads)))
            out.append(Row(group, f"FMA peak {name}", lambda mod=mod, iters=iters, t=threads: mod._fma_peak(iters, t),
                           key=f"{stem} peak {name}", work=2 * mod._simd_width * _chains(mod) * iters * threads / 1e9,
                           work_unit="GFLOP/s", note=f"{mod._simd_width * 32}-bit FMA, {threads} threads",
                           interleave=True))
        for name, mod in found.items():
            da, db, dc = _put(mod, a), _put(mod, b), mod.Array(m * p)
            compare = [f"{stem} numpy", f"{stem} peak {name}"]
            if name != "native" and "native" in found:
                compare.append(f"{stem} needle native")
            out.append(Row(group, f"needle cpu {name}",
                           lambda mod=mod, da=da, db=db, dc=dc, m=m, n=n, p=p: mod.matmul(da, db, dc, m, n, p),
                           key=f"{stem} needle {name}", compare=tuple(compare), work=flops / 1e9,
                           work_unit="GFLOP/s", note="loaded by the plugin" if name == picked else "",
                           interleave=True))
    return out


def _chains(mod) -> int:
    """FMA chains per thread in ``_fma_peak`` (peak.cpp): the FLOPs the call returns tell."""
    return int(mod._fma_peak(1, 1) / (2 * mod._simd_width))


def _exp_rows(found: dict[str, object], picked: str) -> list[Row]:
    x = np.random.default_rng(1).standard_normal(N_EXP, dtype=np.float32)
    group = "ewise_exp 2^22 into out, by ISA module"
    out = [Row(group, "numpy", lambda y=np.empty_like(x): np.exp(x, out=y), key="isa exp numpy",
               work=8 * N_EXP / 1e9, work_unit="GB/s")]
    for name, mod in found.items():
        dx, dy = _put(mod, x), mod.Array(N_EXP)
        compare = ["isa exp numpy"] + (["isa exp native"] if name != "native" and "native" in found else [])
        out.append(Row(group, f"needle cpu {name}", lambda mod=mod, dx=dx, dy=dy: mod.ewise_exp(dx, dy),
                       key=f"isa exp {name}", compare=tuple(compare), work=8 * N_EXP / 1e9, work_unit="GB/s",
                       note="loaded by the plugin" if name == picked else ""))
    return out


def rows() -> list[Row]:
    found = modules()
    if isinstance(found, str):
        return [Row("SGEMM vs FMA peak, by ISA module", "needle cpu", None, skip=found)]
    mods, picked = found
    return [*_sgemm_rows(mods, picked), *_exp_rows(mods, picked)]
