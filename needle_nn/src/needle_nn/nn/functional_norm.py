"""Training-mode normalisation (BatchNorm, LayerNorm) as one graph node.

``NormTrain(axes, stat_shape, param_shape, eps)(x, weight, bias)`` is
``weight * x̂ + bias`` with ``x̂ = (x - mean) / sqrt(var + eps)``, the mean and the
biased variance taken over ``axes``. The forward runs on NDArrays (no graph nodes);
its batch statistics stay on the op (``op.stats``) for BatchNorm's running averages.

The adjoints are ordinary Tensor ops, so gradients stay differentiable. They refer to
``x̂`` and ``1/sqrt(var + eps)`` as Tensors of ``x`` through two helper ops,
``_Normalised`` and ``_InvStd``, whose forwards return the cached arrays and whose
gradients are written in terms of each other: the family is closed under
differentiation, so second derivatives are exact without recomputing the forward.
On a device with the ``batchnorm_backward`` kernel, BatchNorm's first-order adjoints
are one ``BatchNormAdjoint`` node instead (same values; its own gradient goes through
this composition).

With ``g`` the output adjoint, ``n`` the number of reduced elements and ``s = 1/std``:
``dbias = Σ g``, ``dweight = Σ g·x̂`` (over the axes ``weight`` is broadcast on) and
``dx = s · (gw - mean(gw) - x̂ · mean(gw·x̂))`` with ``gw = g·weight`` (means over ``axes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from needle_core import backend_ndarray as nd
from needle_core.autograd import Tensor, TensorOp, TensorTupleOp
from needle_core.ops import reshape, summation


class NormStats:
    """The statistics of one input array (all in ``stat_shape``, which keeps the
    reduced axes as 1 so they broadcast against ``x``)."""

    __slots__ = ("source", "axes", "stat_shape", "count", "eps", "neg_mean", "var", "inv_std", "xhat")

    def __init__(self, x: Any, axes: tuple[int, ...], stat_shape: tuple[int, ...], eps: float) -> None:
        count = 1
        for a in axes:
            count *= x.shape[a]
        if count == 0:
            raise ValueError(f"normalisation over axes {axes} of shape {x.shape}: no elements to take statistics of")
        shape = x.shape
        # -(Σx)/n in one kernel: x + (-mean) is bitwise x - mean, without negating a full array
        neg_mean = x.sum(axis=axes, keepdims=True) / float(-count)
        centred = x + neg_mean.broadcast_to(shape)
        var = (centred * centred).sum(axis=axes, keepdims=True) / float(count)  # biased
        inv_std = (var + float(eps)) ** -0.5
        self.source = x
        self.axes = axes
        self.stat_shape = stat_shape
        self.count = count
        self.eps = eps
        self.neg_mean = neg_mean
        self.var = var
        self.inv_std = inv_std
        self.xhat = centred * inv_std.broadcast_to(shape)

    def mean(self) -> Any:
        """The batch mean (an NDArray in ``stat_shape``)."""
        return self.neg_mean * -1.0

    @classmethod
    def from_parts(cls, x: Any, axes: tuple[int, ...], stat_shape: tuple[int, ...], eps: float, count: int,
                   mean: Any, var: Any, inv_std: Any, xhat: Any) -> NormStats:
        """Statistics a fused kernel computed (``mean``, ``var``, ``inv_std`` in ``stat_shape``)."""
        st = cls.__new__(cls)
        st.source, st.axes, st.stat_shape, st.count, st.eps = x, axes, stat_shape, count, eps
        st.neg_mean, st.var, st.inv_std, st.xhat = mean * -1.0, var, inv_std, xhat
        return st

    def of(self, x: Any) -> NormStats:
        """These statistics when they were taken from ``x``, else fresh ones."""
        return self if x is self.source else NormStats(x, self.axes, self.stat_shape, self.eps)


def _to_stat_shape(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``t`` (reduced axes dropped) shaped to broadcast like the statistics; no node
    when NumPy broadcasting already lines it up (leading axes only were dropped)."""
    ts = tuple(t.shape)
    if ts == shape or shape[len(shape) - len(ts):] == ts and all(n == 1 for n in shape[: len(shape) - len(ts)]):
        return t
    return reshape(t, shape)


def _xhat_adjoint(st: NormStats, xhat: Tensor, inv_std: Tensor, g: Tensor) -> Tensor:
    """Adjoint of ``x`` through ``x̂ = (x - mean) · s`` for the adjoint ``g`` of ``x̂``."""
    k = -1.0 / st.count
    mean_g = _to_stat_shape(summation(g, st.axes), st.stat_shape) * k
    mean_gx = _to_stat_shape(summation(g * xhat, st.axes), st.stat_shape) * k
    return (g + mean_g + xhat * mean_gx) * inv_std


class _FromStats(TensorOp):
    """An op whose forward is the array ``field`` of the statistics of its input
    (cached when ``st`` was taken from it)."""

    field = ""

    def __init__(self, st: NormStats) -> None:
        self.st = st

    def compute(self, x: Any) -> Any:
        return getattr(self.st.of(x), self.field)


class _Normalised(_FromStats):
    """``x -> x̂``; the forward returns the cached array of the op that made ``st``."""

    field = "xhat"

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        x = node.inputs[0]
        return _xhat_adjoint(self.st, node, _InvStd(self.st)(x), out_grad)


class _InvStd(_FromStats):
    """``x -> 1/sqrt(var + eps)`` in ``stat_shape``.

    ``d s / d x = -s³ (x - mean) / n = -s² x̂ / n`` (the mean's own derivative drops out
    because the centred values sum to zero)."""

    field = "inv_std"

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        x = node.inputs[0]
        return _Normalised(self.st)(x) * (out_grad * (node * node) * (-1.0 / self.st.count))


class NormTrain(TensorOp):
    """``weight * x̂ + bias`` in one node; see the module docstring.

    ``param_shape`` is how ``weight``/``bias`` broadcast against ``x`` (e.g. ``(1, C, 1, 1)``
    for NCHW BatchNorm, ``(1, D)`` for LayerNorm); they are stored with the reduced
    axes dropped (``(C,)``, ``(D,)``)."""

    def __init__(self, axes: tuple[int, ...], stat_shape: tuple[int, ...], param_shape: tuple[int, ...],
                 eps: float) -> None:
        self.axes = axes
        self.stat_shape = stat_shape
        self.param_shape = param_shape
        self.param_axes = tuple(i for i, n in enumerate(param_shape) if n == 1)
        self.eps = eps
        self.stats: NormStats | None = None

    def compute(self, x: Any, weight: Any, bias: Any) -> Any:
        if self.param_axes == self.axes and x.device.batchnorm_forward is not None:
            fused = _batchnorm_channels_last(x, weight, bias, self.axes, self.stat_shape, self.eps)
            if fused is not None:
                self.stats, out = fused
                return out
        st = self.stats = NormStats(x, self.axes, self.stat_shape, self.eps)
        shape, ps = x.shape, self.param_shape
        return st.xhat * weight.reshape(ps).broadcast_to(shape) + bias.reshape(ps).broadcast_to(shape)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x, weight, bias = node.inputs
        st = self.stats.of(x.realize_cached_data())
        g = out_grad
        if self.param_axes == st.axes:
            if x.device.batchnorm_backward is not None:
                order = _channels_last_order(st, g.dtype, weight.dtype)
                if order is not None:  # one kernel pass; see BatchNormAdjoint
                    adjoints = BatchNormAdjoint(st, order)(g, x, weight)
                    return adjoints[0], adjoints[1], _as_shape(adjoints[2], bias.shape)
            d_x, d_weight, d_bias = _batchnorm_adjoint(st, g, x, weight)
            return d_x, d_weight, _as_shape(d_bias, bias.shape)
        xhat = _Normalised(st)(x)
        inv_std = _InvStd(st)(x)
        d_weight = summation(g * xhat, self.param_axes)
        d_bias = summation(g, self.param_axes)
        d_x = _xhat_adjoint(st, xhat, inv_std, g * _to_stat_shape(weight, self.param_shape))
        return d_x, _as_shape(d_weight, weight.shape), _as_shape(d_bias, bias.shape)


def _batchnorm_adjoint(st: NormStats, g: Tensor, x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """BatchNorm's ``(dx, dweight, dbias)`` as Tensor ops (``dweight`` in ``weight``'s shape,
    ``dbias`` with the reduced axes dropped). Weight is constant over the reduced axes, so
    the two means in the x̂ adjoint are the bias and weight adjoints divided by n (reused)."""
    xhat = _Normalised(st)(x)
    inv_std = _InvStd(st)(x)
    d_weight = summation(g * xhat, st.axes)
    d_bias = summation(g, st.axes)
    k = -1.0 / st.count
    w = _to_stat_shape(weight, st.stat_shape)
    shift = _to_stat_shape(d_bias, st.stat_shape) * k
    slope = _to_stat_shape(d_weight, st.stat_shape) * k
    d_x = (g + shift + xhat * slope) * (w * inv_std)
    return d_x, _as_shape(d_weight, weight.shape), d_bias


def _channels_last_order(st: NormStats, *dtypes: Any) -> tuple[int, ...] | None:
    """The axis order putting the one kept axis last, when ``x̂`` is compact in it (it is
    after ``batchnorm_forward``) and every operand has ``x̂``'s dtype; else None."""
    xhat = st.xhat
    kept = tuple(i for i in range(len(xhat.shape)) if i not in st.axes)
    if len(kept) != 1 or any(d != xhat.dtype for d in dtypes):
        return None
    order = (*st.axes, kept[0])
    return order if (xhat if order == _ROWS else xhat.permute(order)).is_compact() else None


class BatchNormAdjoint(TensorTupleOp):
    """``(g, x, weight) -> (dx, dweight, dbias)``: BatchNorm's adjoints for the output
    adjoint ``g`` in one pass of the device's ``batchnorm_backward`` kernel over the
    channels-last ``(rows, channels)`` view (``order`` puts the channel axis last).

    Its own gradient (second derivatives) differentiates the composition the op replaces,
    ``_batchnorm_adjoint``, through the subgraph between its inputs and outputs only, so
    every order of derivative matches the composition's."""

    def __init__(self, st: NormStats, order: tuple[int, ...]) -> None:
        self.st = st
        self.order = order

    def compute(self, g: Any, x: Any, weight: Any) -> tuple[Any, Any, Any]:
        st, order = self.st.of(x), self.order
        xhat = _to_rows(st.xhat, order)
        c = xhat.shape[1]
        w = weight if weight.shape == (c,) else weight.reshape((c,))
        dx, d_weight, d_bias = nd.batchnorm_backward(_to_rows(g, order), xhat, w, st.inv_std.reshape((c,)))
        return _from_rows(dx, x.shape, order), d_weight if w is weight else d_weight.reshape(weight.shape), d_bias

    def gradient(self, out_grad: Any, node: Any) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        g, x, weight = node.inputs
        composed = _batchnorm_adjoint(self.st, g, x, weight)
        cotangents = [out_grad[i] for i in range(3)]
        return tuple(_local_vjp(composed, cotangents, (g, x, weight)))


def _local_vjp(outputs: Sequence[Tensor], cotangents: Sequence[Tensor], inputs: Sequence[Tensor]) -> list[Any]:
    """The adjoints of ``inputs`` given those of ``outputs``, by reverse mode over the
    nodes between them only (the graph above ``inputs`` is neither walked nor touched,
    and no ``.grad`` is written). None for an input no output depends on."""
    stop = set(inputs)
    order: list[Any] = []
    seen: set[Any] = set()
    for root in outputs:
        if root in seen or not root.requires_grad:
            continue
        seen.add(root)
        stack = [(root, iter(() if root in stop else root.inputs))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in seen and child.requires_grad:
                    seen.add(child)
                    stack.append((child, iter(() if child in stop else child.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    adjoints: dict[Any, list[Any]] = {}
    for out, cot in zip(outputs, cotangents, strict=True):
        adjoints.setdefault(out, []).append(cot)
    for node in reversed(order):
        if node in stop or node.op is None or node not in adjoints:
            continue
        terms = adjoints.pop(node)
        grad = sum(terms[1:], terms[0])
        for inp, inp_grad in zip(node.inputs, node.op.gradient_as_tuple(grad, node), strict=True):
            if inp_grad is not None and inp.requires_grad:
                adjoints.setdefault(inp, []).append(inp_grad)
    result = []
    for inp in inputs:
        terms = adjoints.get(inp)
        result.append(None if not terms else sum(terms[1:], terms[0]))
    return result


def _batchnorm_channels_last(x: Any, weight: Any, bias: Any, axes: tuple[int, ...], stat_shape: tuple[int, ...],
                             eps: float) -> tuple[NormStats, Any] | None:
    """BatchNorm's forward through the device's ``batchnorm_forward`` kernel when the one
    kept axis is the innermost in memory (an NCHW view of NHWC data, as ``nn.Conv``
    returns, or a compact ``(batch, dim)``): ``x`` is then a ``(rows, channels)`` matrix
    without a copy. None for other layouts (the composition handles them)."""
    kept = tuple(i for i in range(len(x.shape)) if i not in axes)
    if len(kept) != 1 or not x.dtype == weight.dtype == bias.dtype:  # mixed dtypes: the composition promotes
        return None
    order = (*axes, kept[0])
    if not (x if order == _ROWS else x.permute(order)).is_compact():
        return None
    rows = x.size // x.shape[kept[0]]
    out, xhat, mean, var, inv_std = nd.batchnorm_forward(_to_rows(x, order), weight, bias, eps)
    st = NormStats.from_parts(x, axes, stat_shape, eps, rows, mean.reshape(stat_shape), var.reshape(stat_shape),
                              inv_std.reshape(stat_shape), _from_rows(xhat, x.shape, order))
    return st, _from_rows(out, x.shape, order)


_ROWS = (0, 1)  # the axis order of a (batch, channels) input: already the (rows, channels) matrix


def _to_rows(a: Any, order: tuple[int, ...]) -> Any:
    """``a`` with its axes in ``order`` (channels last) as a compact (rows, channels) matrix:
    a view when that order is compact in memory, else a copy."""
    if order == _ROWS:
        return a.compact()
    last = a.permute(order).compact()
    return last.reshape((last.size // last.shape[-1], last.shape[-1]))


def _from_rows(m: Any, shape: tuple[int, ...], order: tuple[int, ...]) -> Any:
    """The inverse of ``_to_rows`` for an input of ``shape``: a view of the matrix ``m``."""
    if order == _ROWS:
        return m
    back = tuple(order.index(i) for i in range(len(order)))
    return m.reshape(tuple(shape[i] for i in order)).permute(back)


def _as_shape(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    return t if tuple(t.shape) == tuple(shape) else reshape(t, tuple(shape))


def norm_train(x: Tensor, weight: Tensor, bias: Tensor, axes: tuple[int, ...], stat_shape: tuple[int, ...],
               param_shape: tuple[int, ...], eps: float) -> tuple[Tensor, NormStats]:
    """The normalised output and the statistics it used (for running averages)."""
    op = NormTrain(axes, stat_shape, param_shape, eps)
    out = op(x, weight, bias)
    out.realize_cached_data()  # under LAZY_MODE the statistics exist only once computed
    return out, op.stats


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
