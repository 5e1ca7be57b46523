"""The cpu_numpy kernel namespace: every primitive of docs/backends.md §2 plus a
few optional kernels of §3 (the fused softmax cross-entropy in ``softmax_loss.py``).

``conv2d_nhwc`` (and its adjoints ``conv2d_nhwc_grad_*``) and ``matmul_tiled`` are
deliberately absent, so the reference device also exercises core's fallback
compositions (the optimisers' NDArray fallback is covered by the suite with
``sgd_update``/``adam_update`` patched to None).

Every kernel here is on the per-op hot path: no validation beyond what keeps a
kernel in bounds, no allocation beyond the NumPy call itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from needle_core.views import check_sizes, check_view
from needle_core.kernels import REDUCTIONS, ReductionKernel

from . import render
from .runtime import quiet
from .softmax_loss import softmax_cross_entropy, softmax_cross_entropy_backward  # noqa: F401 (kernels of this namespace)

_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
_FLOAT32 = _DTYPES["float32"]


class Array:
    """A flat device buffer: a 1-D NumPy array of ``size`` elements."""

    __slots__ = ("array", "size", "dtype")

    def __init__(self, size: int, dtype: str = "float32") -> None:
        np_dtype = _FLOAT32 if dtype == "float32" else _DTYPES.get(dtype)
        if np_dtype is None:
            raise ValueError(f"cpu_numpy holds float32 and float64 buffers, not {dtype!r}")
        self.array = np.empty(size, np_dtype)
        self.size = size
        self.dtype = dtype

    def ptr(self) -> int:
        return self.array.ctypes.data

    @property
    def __array_interface__(self) -> dict:
        """Host memory: NumPy (and MPI through it) can read and write the buffer in place."""
        return self.array.__array_interface__

    def __repr__(self) -> str:
        return f"Array(size={self.size}, dtype={self.dtype!r})"


def _view(buf: Array, shape: tuple, strides: tuple, offset: int) -> np.ndarray:
    """The strided view (element strides/offset) of ``buf`` as a NumPy array.

    ``np.ndarray(buffer=...)`` rather than ``as_strided``: it is ~9x cheaper per
    call and it refuses views that reach outside the buffer, so a bad
    (shape, strides, offset) raises instead of reading out of bounds. Only then
    does needle_core.views run, to raise the ABI's ValueError with its message.
    """
    arr = buf.array
    item = arr.itemsize
    if strides and min(strides) < 0:
        check_view(buf.size, shape, strides, offset, _kernel_name())  # raises: negative strides
    try:
        return np.ndarray(shape, arr.dtype, arr, offset * item, [s * item for s in strides])
    except (TypeError, ValueError):
        check_view(buf.size, shape, strides, offset, _kernel_name())
        raise


def _kernel_name() -> str:
    """The public kernel on the call stack (error path only: the message names the kernel)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_name.startswith("_"):
        frame = frame.f_back
    return frame.f_code.co_name if frame is not None else "cpu_numpy"


# -- buffers and strided copies ----------------------------------------------------
def to_numpy(a: Array, shape: tuple, strides: tuple, offset: int) -> np.ndarray:
    # A copy: a caller mutating the result must not change the device buffer.
    return _view(a, shape, strides, offset).copy()


def from_numpy(np_array: np.ndarray, out: Array) -> None:
    if np_array.size != out.size:
        raise ValueError(f"from_numpy: expected {out.size} elements, got an array of shape {np_array.shape}")
    out.array[...] = np_array.reshape(-1)


@quiet
def fill(out: Array, val: float) -> None:
    out.array.fill(val)


def compact(a: Array, out: Array, shape: tuple, strides: tuple, offset: int) -> None:
    out.array.reshape(shape)[...] = _view(a, shape, strides, offset)


def ewise_setitem(a: Array, out: Array, shape: tuple, strides: tuple, offset: int) -> None:
    _view(out, shape, strides, offset)[...] = a.array.reshape(shape)


@quiet
def scalar_setitem(size: int, val: float, out: Array, shape: tuple, strides: tuple, offset: int) -> None:
    _view(out, shape, strides, offset)[...] = val


# -- the elementwise family, rendered from needle_core.kernels.ELEMENTWISE (render.py) --
globals().update(render.elementwise_kernels())

_STRIDED_ROWS = render.strided_ufuncs()


@quiet  # its rows (add, mul, div, power) can warn
def ewise_strided(
    name: str,
    a: Array,
    a_strides: tuple,
    a_offset: int,
    b: Array,
    b_strides: tuple,
    b_offset: int,
    out: Array,
    shape: tuple,
) -> None:
    """out (compact) = row ``name`` applied to the strided views of ``a`` and ``b``."""
    ref = _STRIDED_ROWS.get(name)
    if ref is None:
        raise ValueError(
            f"ewise_strided: expected the name of a binary ewise_* row of the elementwise table "
            f"(e.g. 'ewise_add'), got {name!r}"
        )
    ref(_view(a, shape, a_strides, a_offset), _view(b, shape, b_strides, b_offset), out=out.array.reshape(shape))


# -- matmul and reductions ------------------------------------------------------------
@quiet
def matmul(a: Array, b: Array, out: Array, m: int, n: int, p: int) -> None:
    np.matmul(a.array.reshape(m, n), b.array.reshape(n, p), out=out.array.reshape(m, p))


@quiet
def batched_matmul(a: Array, b: Array, out: Array, batch: int, m: int, n: int, p: int) -> None:
    np.matmul(a.array.reshape(batch, m, n), b.array.reshape(batch, n, p), out=out.array.reshape(batch, m, p))


# -- reductions, rendered from needle_core.kernels.REDUCTIONS -------------------------
# The rows' ``numpy`` column is ufunc.reduce itself: np.sum/np.max add a Python
# dispatch layer (~1 us per call).
def _render_reduction(row: ReductionKernel) -> tuple[Callable[..., None], Callable[..., None]]:
    ref = row.numpy

    def contiguous(a: Array, out: Array, reduce_size: int) -> None:
        ref(a.array.reshape(out.size, reduce_size), 1, out=out.array)

    def view(a: Array, out: Array, shape: tuple, strides: tuple, offset: int, reduce_ndim: int) -> None:
        ndim = len(shape)
        axes = tuple(range(ndim - reduce_ndim, ndim))
        ref(_view(a, shape, strides, offset), axes, out=out.array.reshape(shape[: ndim - reduce_ndim]))

    kernels = []
    for kernel, name in ((contiguous, row.name), (view, row.view_name)):
        if row.name not in render.NEVER_WARNS:  # a sum overflows to inf quietly, as in C
            kernel = quiet(kernel)
        kernel.__name__ = kernel.__qualname__ = name
        kernel.__doc__ = f"acc = {row.combine} from {row.c_identity}; {row.nan_rule}"
        kernels.append(kernel)
    return kernels[0], kernels[1]


for _row in REDUCTIONS:
    globals()[_row.name], globals()[_row.view_name] = _render_reduction(_row)
del _row


@quiet
def logsumexp(a: Array, out: Array, reduce_size: int) -> None:
    x = a.array.reshape(out.size, reduce_size)
    m = x.max(axis=1, keepdims=True)
    m[~np.isfinite(m)] = 0.0  # all -inf (or inf/nan) blocks: shift by 0, keep -inf/inf/nan
    np.log(np.exp(x - m).sum(axis=1), out=out.array)  # log(0) = -inf is the documented result
    out.array += m[:, 0]


@quiet
def batchnorm_forward(x: Array, weight: Array, bias: Array, out: Array, xhat: Array, mean: Array, var: Array,
                      inv_std: Array, rows: int, channels: int, eps: float) -> None:
    """Per-column statistics of ``x`` (rows, channels), accumulated in float64."""
    check_sizes("batchnorm_forward", rows * channels, x=x, out=out, xhat=xhat)
    check_sizes("batchnorm_forward", channels, weight=weight, bias=bias, mean=mean, var=var, inv_std=inv_std)
    if rows < 1:
        raise ValueError(f"batchnorm_forward: expected rows >= 1, got {rows}")
    X = x.array.reshape(rows, channels)
    mean.array[:] = X.mean(axis=0, dtype=np.float64)
    centred = X - mean.array
    var.array[:] = np.square(centred, dtype=np.float64).mean(axis=0)
    np.power(var.array + var.array.dtype.type(eps), -0.5, out=inv_std.array)
    np.multiply(centred, inv_std.array, out=xhat.array.reshape(rows, channels))
    np.add(xhat.array.reshape(rows, channels) * weight.array, bias.array, out=out.array.reshape(rows, channels))


@quiet
def batchnorm_backward(g: Array, xhat: Array, weight: Array, inv_std: Array, dx: Array, dweight: Array,
                       dbias: Array, rows: int, channels: int) -> None:
    """The adjoints of batchnorm_forward's output ``g`` (rows, channels): column sums in float64."""
    check_sizes("batchnorm_backward", rows * channels, g=g, xhat=xhat, dx=dx)
    check_sizes("batchnorm_backward", channels, weight=weight, inv_std=inv_std, dweight=dweight, dbias=dbias)
    if rows < 1:
        raise ValueError(f"batchnorm_backward: expected rows >= 1, got {rows}")
    G, H = g.array.reshape(rows, channels), xhat.array.reshape(rows, channels)
    db = G.sum(axis=0, dtype=np.float64)
    dw = np.einsum("rc,rc->c", G.astype(np.float64), H)
    dbias.array[:], dweight.array[:] = db, dw
    scale = weight.array.astype(np.float64) * inv_std.array / rows
    dx.array.reshape(rows, channels)[:] = scale * (rows * G.astype(np.float64) - db - H * dw)


# -- fused optimiser updates ------------------------------------------------------------
# The same ufunc sequence as needle.optim's NDArray fallback (scalars rounded to the
# buffer's dtype by NumPy, power(., 0.5) rather than sqrt), so a cpu_numpy trajectory
# is bit-identical with or without these kernels; in place, no NDArray per step.
@quiet
def sgd_update(w: Array, g: Array, u: Array, size: int, lr: float, momentum: float, weight_decay: float) -> None:
    check_sizes("sgd_update", size, w=w, g=g, u=u)
    W, G, U = w.array, g.array, u.array
    if weight_decay:
        G = G + W * weight_decay
    U *= momentum
    U += G * (1.0 - momentum)
    U_lr = U * lr
    W += np.negative(U_lr, out=U_lr)


@quiet
def adam_update(
    w: Array,
    g: Array,
    m: Array,
    v: Array,
    size: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    t: int,
) -> None:
    check_sizes("adam_update", size, w=w, g=g, m=m, v=v)
    W, G, M, V = w.array, g.array, m.array, v.array
    if weight_decay:
        G = G + W * weight_decay
    M *= beta1
    M += G * (1.0 - beta1)
    G2 = G * G
    G2 *= 1.0 - beta2
    V *= beta2
    V += G2
    m_hat = M / (1.0 - beta1**t)
    v_hat = np.divide(V, 1.0 - beta2**t, out=G2)
    np.power(v_hat, 0.5, out=v_hat)
    v_hat += eps
    m_hat *= lr
    m_hat /= v_hat
    W += np.negative(m_hat, out=m_hat)


# -- tool hooks (docs/backends.md §8): DLPack shares these buffers with NumPy/PyTorch ----
def host_array(a: Array) -> np.ndarray:
    """The buffer itself: its memory is host memory."""
    return a.array


def from_host_array(host: np.ndarray) -> Array:
    """A buffer over ``host``'s memory (1-D, C-contiguous, writable, float32/float64), no copy."""
    if host.ndim != 1 or not host.flags.c_contiguous or not host.flags.writeable or host.dtype not in _DTYPES.values():
        raise ValueError(
            f"from_host_array needs a writable 1-D C-contiguous float32/float64 array, got {host.dtype} "
            f"shape {host.shape} (contiguous={host.flags.c_contiguous}, writable={host.flags.writeable})"
        )
    buf = Array.__new__(Array)
    buf.array, buf.size, buf.dtype = host, host.size, host.dtype.name
    return buf
