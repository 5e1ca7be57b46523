"""Row gather and scatter-add on NDArrays (an embedding lookup and its adjoint): the
device's ``take_rows`` / ``scatter_add_rows`` kernels when it has them, else the same
gather or scatter done with NumPy on a host copy (the reference the conformance suite
checks the kernels against). The fallback moves ``rows x width`` and ``count x width``
elements; a one-hot product would build ``count x rows`` (for a loss picking one logit
per row out of ``n * k`` that is gigabytes).

``index`` holds row numbers as values of the array's float dtype (whole numbers in
``[0, rows)``), any shape; it is read in row-major order.
"""

from __future__ import annotations

import math

import numpy as np

from .composite import _handle
from ._operands import check_partners
from .ndarray import NDArray, _alloc


def _check(table_like: NDArray, index: NDArray, name: str) -> None:
    check_partners(name, table_like, "the rows", index=index)


def _host_rows(index: NDArray, rows: int) -> np.ndarray:
    """The row numbers of ``index`` as int64 on the host, checked to be in ``[0, rows)``."""
    flat = index.numpy().reshape(-1)
    bad = (flat < 0) | (flat >= rows) | (flat != np.round(flat))
    if bad.any():
        raise ValueError(f"index value {flat[bad][0]} is not a row number in [0, {rows})")
    return flat.astype(np.int64)


def take_rows(table: NDArray, index: NDArray) -> NDArray:
    """``table[index]``: for ``table (rows, width)``, shape ``index.shape + (width,)``."""
    if len(table.shape) != 2:
        raise ValueError(f"take_rows: expected a table of shape (rows, width), got {table.shape}")
    _check(table, index, "take_rows")
    rows, width = table.shape
    count = math.prod(index.shape)
    dev = table.device
    if dev.take_rows is not None:
        out = _alloc(index.shape + (width,), dev, table.dtype)
        dev.take_rows(_handle(table), _handle(index), out._handle, count, width)
        return out
    picked = table.numpy()[_host_rows(index, rows)]
    return NDArray(picked.reshape(index.shape + (width,)), device=dev, dtype=table.dtype)


def scatter_add_rows(src: NDArray, index: NDArray, rows: int) -> NDArray:
    """``(rows, width)`` zeros with ``src[k]`` added to row ``index[k]`` for every k (in
    order): the adjoint of :func:`take_rows` for ``src`` of shape ``index.shape + (width,)``."""
    if tuple(src.shape[:-1]) != tuple(index.shape) or rows < 0:
        raise ValueError(f"scatter_add_rows: expected src of shape index.shape + (width,) = {index.shape} + (width,) "
                         f"and rows >= 0, got {src.shape} and {rows}")
    _check(src, index, "scatter_add_rows")
    width, count = src.shape[-1], math.prod(index.shape)
    dev = src.device
    if dev.scatter_add_rows is not None:
        out = _alloc((rows, width), dev, src.dtype)
        dev.scatter_add_rows(_handle(src), _handle(index), out._handle, count, width)
        return out
    out = np.zeros((rows, width), dtype=src.dtype)
    np.add.at(out, _host_rows(index, rows), src.numpy().reshape(count, width))  # in order, repeats accumulate
    return NDArray(out, device=dev, dtype=src.dtype)
