"""Per-op Python overhead: a 4x4 elementwise add as a Tensor op, with and without
requires_grad, on every available needle device, against raw NumPy ``a + b`` and
PyTorch CPU tensors (with and without grad) when PyTorch is importable."""

from __future__ import annotations

import numpy as np
from harness import Row

SHAPE = (4, 4)
GRAD, NOGRAD = "Tensor 4×4 add, requires_grad", "Tensor 4×4 add, no grad"
BACKWARD = "Tensor 4×4 (a * b).sum() forward + backward"


def _operands() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal(SHAPE).astype(np.float32), rng.standard_normal(SHAPE).astype(np.float32)


def _numpy_rows() -> list[Row]:
    a, b = _operands()
    return [Row("ndarray 4×4 add", "numpy", lambda: a + b, key="overhead numpy")]


def _torch_rows() -> list[Row]:
    try:
        import torch
    except ImportError:
        skip = "PyTorch not installed (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"
        return [
            Row(GRAD, "torch", None, key="overhead torch grad", skip=skip),
            Row(NOGRAD, "torch", None, key="overhead torch", skip=skip),
        ]
    a, b = _operands()
    ga, gb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a), torch.tensor(b)
    return [
        Row(GRAD, "torch", lambda: ga + gb, key="overhead torch grad", compare=("overhead numpy",)),
        Row(NOGRAD, "torch", lambda: ta + tb, key="overhead torch", compare=("overhead numpy",)),
        Row(BACKWARD, "torch", lambda: (ga * gb).sum().backward(), key="overhead torch backward"),
    ]


def _needle_rows() -> list[Row]:
    try:
        import needle as ndl
    except Exception as exc:
        return [Row(GRAD, "needle", None, skip=f"import needle failed: {exc}")]
    a, b = _operands()
    rows = []
    for dev in ndl.all_devices():
        subject = f"needle {dev.name}"
        if not dev.enabled():
            continue
        try:
            ga, gb = (ndl.Tensor(x, device=dev, dtype="float32", requires_grad=True) for x in (a, b))
            na, nb = (ndl.Tensor(x, device=dev, dtype="float32", requires_grad=False) for x in (a, b))
            da, db = ga.realize_cached_data(), gb.realize_cached_data()
        except Exception as exc:
            rows.append(Row(GRAD, subject, None, skip=f"{type(exc).__name__}: {exc}"))
            continue
        rows += [
            Row(GRAD, subject, lambda ga=ga, gb=gb: ga + gb, compare=("overhead numpy", "overhead torch grad")),
            Row(NOGRAD, subject, lambda na=na, nb=nb: na + nb, compare=("overhead numpy", "overhead torch")),
            Row("ndarray 4×4 add", subject, lambda da=da, db=db: da + db, compare=("overhead numpy",)),
            Row(BACKWARD, subject, lambda ga=ga, gb=gb: (ga * gb).sum().backward(),
                compare=("overhead torch backward",)),
        ]
    return rows


def rows() -> list[Row]:
    # baselines first so the table reads top-down
    return _numpy_rows() + _torch_rows() + _needle_rows()
