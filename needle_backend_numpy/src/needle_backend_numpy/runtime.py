"""The cpu_numpy runtime: its only state is NumPy's floating-point error state.

Silence NumPy's floating-point warnings inside kernels, at the lowest per-call cost.

The compiled backends produce NaN/inf for ``log(-1)``, ``(-2) ** 0.5``, ``1 / 0`` or
``exp(1000)`` silently, as C does; NumPy would warn (``RuntimeWarning: invalid value
encountered in log``), so a user running with ``-W error`` would get an exception on
cpu_numpy only. Kernels whose ufuncs can raise a floating-point flag therefore run
with NumPy's error handling set to "ignore".

``np.errstate`` costs ~1 us per use (it builds its state object on every entry);
NumPy >= 2 keeps that state in a context variable, so setting it to a prebuilt
"ignore" value and resetting it costs ~0.15 us and is thread- and asyncio-safe in
the same way ``np.errstate`` is. NumPy 1.x (no such variable) falls back to
``np.errstate``. The prebuilt value also fixes the ufunc buffer size at NumPy's
value when this module was imported (``np.setbufsize`` is a tuning knob only).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

try:  # NumPy >= 2.0: the error state is a ContextVar holding an opaque "extobj"
    from numpy._core.umath import _extobj_contextvar, _make_extobj
except ImportError:  # NumPy 1.x, or a future NumPy that renamed them: the public, slower way
    _extobj_contextvar = None

if _extobj_contextvar is not None:
    mute: Callable[[], Any] = functools.partial(_extobj_contextvar.set, _make_extobj(all="ignore"))
    unmute: Callable[[Any], None] = _extobj_contextvar.reset
else:

    def mute() -> Any:
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def unmute(state: Any) -> None:
        state.__exit__(None, None, None)


def quiet(kernel: F) -> F:
    """``kernel`` running with NumPy's floating-point warnings off (results unchanged)."""

    @functools.wraps(kernel)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = mute()
        try:
            return kernel(*args, **kwargs)
        finally:
            unmute(token)

    return wrapped  # type: ignore[return-value]
