"""The course's free functions over NDArrays (``nd.sum(a, axis)`` etc.)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .ndarray import NDArray

__all__ = ["broadcast_to", "reshape", "maximum", "log", "exp", "tanh", "sum", "max", "flip", "pad", "permute"]


def broadcast_to(array: NDArray, new_shape: Iterable[int]) -> NDArray:
    return array.broadcast_to(new_shape)


def reshape(array: NDArray, new_shape: Iterable[int]) -> NDArray:
    return array.reshape(new_shape)


def permute(array: NDArray, new_axes: Iterable[int]) -> NDArray:
    return array.permute(new_axes)


def maximum(a: NDArray, b: Any) -> NDArray:
    return a.maximum(b)


def log(a: NDArray) -> NDArray:
    return a.log()


def exp(a: NDArray) -> NDArray:
    return a.exp()


def tanh(a: NDArray) -> NDArray:
    return a.tanh()


def sum(a: NDArray, axis: int | Iterable[int] | None = None, keepdims: bool = False) -> NDArray:  # noqa: A001
    return a.sum(axis=axis, keepdims=keepdims)


def max(a: NDArray, axis: int | Iterable[int] | None = None, keepdims: bool = False) -> NDArray:  # noqa: A001
    return a.max(axis=axis, keepdims=keepdims)


def flip(a: NDArray, axes: int | Iterable[int] | None = None) -> NDArray:
    return a.flip(axes)


def pad(a: NDArray, axes: Iterable[tuple[int, int]]) -> NDArray:
    return a.pad(axes)
