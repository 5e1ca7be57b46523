"""reduce_sum_view / reduce_max_view over broadcast (stride-0) axes: same values as the
expanded view, without ever expanding it (a sum over a repeated element is a multiply)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cpu_kernel_support import K, dev, host


# (shape, strides, offset, reduce_ndim) over a 64-element buffer; every case has a stride-0 axis
CASES = [
    ((5, 7), (0, 1), 0, 1),  # kept axis repeats, reduced run contiguous
    ((7, 5), (1, 0), 3, 1),  # reduced axis repeats
    ((4, 6), (0, 0), 0, 1),  # both repeat
    ((3, 4, 5), (0, 1, 4), 2, 2),  # kept repeats, reduced axes transposed
    ((3, 4, 5), (8, 0, 1), 1, 2),  # a reduced axis repeats between two that do not
    ((2, 9, 3), (0, 2, 0), 5, 1),  # repeats on both sides, reduced axis strided
    ((6, 2, 4), (0, 4, 1), 0, 1),  # kept rows repeat, kept-contiguous path
    ((6, 20), (0, 0), 7, 2),  # everything repeats: one element
    ((3, 1, 40), (1, 0, 0), 0, 2),  # length-1 axis with stride 0 is not a repeat
]


@pytest.mark.parametrize("name,ref", [("reduce_sum_view", np.sum), ("reduce_max_view", np.max)])
@pytest.mark.parametrize("shape,strides,offset,reduce_ndim", CASES)
def test_broadcast_axes_reduce_like_the_expanded_view(name, ref, shape, strides, offset, reduce_ndim):
    base = np.random.default_rng(0).standard_normal(64).astype(np.float32)
    view = np.lib.stride_tricks.as_strided(base[offset:], shape, [s * 4 for s in strides])
    kept = shape[: len(shape) - reduce_ndim]
    out = K.Array(int(np.prod(kept)))
    getattr(K, name)(dev(base), out, shape, strides, offset, reduce_ndim)
    axes = tuple(range(len(kept), len(shape)))
    expected = ref(view.astype(np.float64), axis=axes)
    np.testing.assert_allclose(host(out, kept), expected, rtol=2e-6, atol=1e-5)


def test_nan_and_inf_survive_a_repeated_axis():
    base = dev(np.array([np.nan, np.inf, -np.inf], np.float32))
    for name in ("reduce_sum_view", "reduce_max_view"):
        out = K.Array(3)
        getattr(K, name)(base, out, (3, 1000), (1, 0), 0, 1)
        got = host(out, (3,))
        assert np.isnan(got[0]) and got[1] == np.inf and got[2] == -np.inf


# Peak RSS growth of a fresh process reducing views whose expansion is ~400 MB each:
# the old kernel gathered them into a compact temporary first.
_RSS_SCRIPT = textwrap.dedent(
    """
    import resource
    from needle_backend_cpu import _kernels as K
    import numpy as np

    one = K.Array(128)
    K.from_numpy(np.full(128, 2.0, np.float32), one)
    out = K.Array(10_000)
    rows = K.Array(1_000_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name in ("reduce_sum_view", "reduce_max_view"):
        getattr(K, name)(one, out, (10_000, 10_000), (0, 0), 0, 1)  # kept and reduced axes repeat
        getattr(K, name)(one, rows, (1_000_000, 10, 10), (0, 1, 10), 0, 2)  # kept repeats, reduced transposed
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(grown_mb)
    """
)


def test_reducing_broadcast_views_allocates_no_expansion():
    done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    grown_mb = float(done.stdout.split()[-1])
    assert grown_mb < 100, f"peak RSS grew by {grown_mb:.0f} MB reducing broadcast views (expansion: ~400 MB)"
