"""The check every fused kernel's wrapper makes before it calls the device: its operands
are on one device and share one dtype (a kernel takes one dtype for all its buffers)."""

from __future__ import annotations

from .ndarray import NDArray, _check_device


def check_partners(name: str, first: NDArray, first_role: str, **partners: NDArray) -> None:
    """``ValueError`` unless every array of ``partners`` (keyword = its role in messages)
    is on ``first``'s device and has ``first``'s dtype."""
    for role, other in partners.items():
        if other.device is not first.device:
            _check_device(first, other)
        if other.dtype != first.dtype:
            raise ValueError(f"{name}: {role} must have the dtype of {first_role} ({first.dtype}), got {other.dtype}")
