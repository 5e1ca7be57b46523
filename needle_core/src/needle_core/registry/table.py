"""Building a device's frozen kernel table: namespace, overrides, provenance, checks.

Pure functions (no registry state): the table is the device factory's namespace
overlaid with the kernels other plugins contribute. For each slot the candidate
with the highest priority wins; the factory's own kernels count as priority 0 and
win ties; other ties go to the alphabetically first provider name. Registration
order never matters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..kernels import ALL_KERNELS, DEVICE_ATTRIBUTES, PRIMITIVE_KERNELS

KNOWN_NAMES: tuple[str, ...] = ALL_KERNELS + DEVICE_ATTRIBUTES
_KNOWN = frozenset(KNOWN_NAMES)

# (priority, tie-break label, kernel, provenance); the factory's label "" wins ties
Slot = tuple[int, str, Any, str]


def namespace_table(ns: Any) -> dict[str, Any]:
    """The kernels a module/object/mapping exposes, by ABI name (absent ones left out)."""
    if isinstance(ns, Mapping):
        return {n: ns[n] for n in KNOWN_NAMES if ns.get(n) is not None}
    return {n: v for n in KNOWN_NAMES if (v := getattr(ns, n, None)) is not None}


def missing_primitives(table: Mapping[str, Any]) -> list[str]:
    return [n for n in PRIMITIVE_KERNELS if table.get(n) is None]


def unknown_names(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if n not in _KNOWN)


def build_table(
    own: Mapping[str, Any],
    own_provenance: str,
    contributions: Iterable[tuple[int, str, Mapping[str, Any], str]],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge the factory's kernels with ``(priority, label, kernels, provenance)`` contributions.

    Returns the kernel table and, for each slot, the provenance of the winner.
    """
    slots: dict[str, Slot] = {name: (0, "", fn, own_provenance) for name, fn in own.items()}
    for priority, label, kernels, provenance in contributions:
        for name, fn in kernels.items():
            if fn is None:
                continue
            current = slots.get(name)
            if current is None or priority > current[0] or (priority == current[0] and label < current[1]):
                slots[name] = (priority, label, fn, provenance)
    return {n: s[2] for n, s in slots.items()}, {n: s[3] for n, s in slots.items()}


def smoke(device: Any) -> str:
    """Allocate, copy in, add and copy out 3 elements; ``""`` if right, else what went wrong."""
    a = np.array([1.0, -2.0, 3.5], dtype=np.float32)
    b = np.array([0.5, 4.0, -1.25], dtype=np.float32)
    x, y, out = device.Array(3), device.Array(3), device.Array(3)
    device.from_numpy(a, x)
    device.from_numpy(b, y)
    device.ewise_add(x, y, out)
    got = np.asarray(device.to_numpy(out, (3,), (1,), 0), dtype=np.float64)
    expected = (a + b).astype(np.float64)
    if got.shape != (3,) or not np.allclose(got, expected, rtol=1e-6, atol=0):
        return f"3-element ewise_add gave {got.tolist()}, expected {expected.tolist()}"
    return ""
