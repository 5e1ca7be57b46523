"""When do a device's result and the reference's result agree? (``check_against``'s rules)

Elementwise, in float64, with ``got`` from the device under test and ``want`` from the
reference device:

- finite values agree when ``|got - want| <= atol + rtol * |want|`` (NumPy's
  ``isclose``: the tolerance is relative to the reference);
- NaN agrees with NaN only: a NaN on one side and a number on the other diverges;
- an infinity agrees only with the same infinity (``inf`` vs ``-inf`` or vs a finite
  value diverges);
- shapes must be equal; dtypes must be equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mismatch:
    """How two arrays differ: the worst elements and how many are out of tolerance."""

    what: str  # one line: "max abs error 3.2 at (2, 1) ..."
    max_abs: float
    max_abs_at: tuple[int, ...]
    max_rel: float
    max_rel_at: tuple[int, ...]
    count: int
    total: int


def compare(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> Mismatch | None:
    """``None`` when ``got`` agrees with ``want`` under the rules above, else how not."""
    if got.shape != want.shape:
        return Mismatch(f"shape {got.shape}, reference shape {want.shape}", float("inf"), (), float("inf"), (), 1, 1)
    if got.dtype != want.dtype:
        return Mismatch(f"dtype {got.dtype}, reference dtype {want.dtype}", float("inf"), (), float("inf"), (), 1, 1)
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    ok = np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
    if ok.all():
        return None
    bad = ~ok
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        abs_err = np.abs(g - w)
        abs_err[np.isnan(abs_err)] = np.inf  # NaN vs a number, or inf vs -inf
        abs_err[ok] = 0.0
        rel_err = abs_err / np.abs(w)
        rel_err[ok] = 0.0
        rel_err[np.isnan(rel_err)] = np.inf
    abs_at = np.unravel_index(int(np.argmax(abs_err)), g.shape) if g.ndim else ()
    rel_at = np.unravel_index(int(np.argmax(rel_err)), g.shape) if g.ndim else ()
    abs_at = tuple(int(i) for i in abs_at)
    rel_at = tuple(int(i) for i in rel_at)
    max_abs, max_rel = float(abs_err[abs_at]), float(rel_err[rel_at])
    what = (
        f"max abs error {max_abs:.4g} at index {abs_at} "
        f"(got {float(g[abs_at]):.7g}, reference {float(w[abs_at]):.7g}); "
        f"max rel error {max_rel:.4g} at index {rel_at}; {int(bad.sum())} of {g.size} elements out of tolerance"
    )
    return Mismatch(what, max_abs, abs_at, max_rel, rel_at, int(bad.sum()), int(g.size))
