"""Keep one identity for classes and registries when needle modules are re-executed.

``importlib.reload`` (and IPython's ``%autoreload 2``, which first *clears* the
module's dict) re-runs a module's code: every ``class`` statement makes a new class,
so objects created before the reload stop being instances of ``module.Tensor``, and
module-level registries start empty. Call :func:`keep` at the end of a module's
class definitions (before any module-level instance is created)::

    from needle_core._reload import keep
    keep(globals(), "Value", "Tensor", "TensorTuple")

or, to cover every class the module defines (so a class added later is not forgotten),
``keep_classes(globals())``.

On the first execution ``keep`` records the objects. On a re-execution it puts the
recorded objects back into the module's namespace; a recorded *class* is first
updated in place with the new class body (methods, properties, class attributes),
so edited code takes effect while ``isinstance`` checks and existing instances keep
working. Non-class objects (a registry dict, a state object) are simply restored.

The records live in a module object that has no file (``needle_core._reload_store``
in ``sys.modules``): nothing can reload or clear it, including this module itself.
"""

from __future__ import annotations

import sys
import types
from collections.abc import MutableMapping
from typing import Any

_STORE_NAME = "needle_core._reload_store"

# attributes of a class body that must never be copied onto another class
_SKIP = frozenset({"__dict__", "__weakref__", "__module__", "_abc_impl"})
_LAYOUT_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType)


def _store() -> dict[tuple[str, str], Any]:
    store = sys.modules.get(_STORE_NAME)
    if store is None:
        store = types.ModuleType(_STORE_NAME, "canonical objects kept across reloads (no file: never reloaded)")
        store.objects = {}
        sys.modules[_STORE_NAME] = store
    return store.objects


def _functions_of(value: Any) -> list[types.FunctionType]:
    """Plain functions hidden in a class-body value (methods, property parts, ...)."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if isinstance(f, types.FunctionType)]
    return [value] if isinstance(value, types.FunctionType) else []


def _retarget_class_cell(fn: types.FunctionType, new_cls: type, old_cls: type) -> None:
    # Zero-argument super() reads the compiler's ``__class__`` cell: point it at the
    # class that survives, or ``super()`` would reject the old class's instances.
    if "__class__" not in fn.__code__.co_freevars or fn.__closure__ is None:
        return
    cell = fn.__closure__[fn.__code__.co_freevars.index("__class__")]
    if cell.cell_contents is new_cls:
        cell.cell_contents = old_cls


def update_class(old: type, new: type) -> None:
    """Copy the body of ``new`` onto ``old`` so ``old`` behaves like the new code."""
    for name, value in new.__dict__.items():
        if name in _SKIP or isinstance(value, _LAYOUT_DESCRIPTORS):
            continue  # slot/dict descriptors belong to the memory layout of ``new``
        for fn in _functions_of(value):
            _retarget_class_cell(fn, new, old)
        try:
            setattr(old, name, value)
        except (AttributeError, TypeError):
            pass  # read-only type attributes (rare); the old value stays
    for name in [n for n, v in old.__dict__.items() if n not in new.__dict__ and _functions_of(v)]:
        delattr(old, name)  # a method deleted from the source is gone after reload too


def keep(namespace: MutableMapping[str, Any], *names: str) -> None:
    """Give ``namespace[name]`` one identity across re-executions of its module."""
    module = namespace["__name__"]
    store = _store()
    for name in names:
        key = (module, name)
        new = namespace[name]
        old = store.get(key)
        if old is None:
            store[key] = new
            continue
        if old is not new and isinstance(old, type) and isinstance(new, type):
            update_class(old, new)
        namespace[name] = old


def kept(module: str, name: str) -> Any:
    """The object recorded for ``module.name`` (None if never recorded)."""
    return _store().get((module, name))


def keep_classes(namespace: MutableMapping[str, Any], *names: str) -> None:
    """:func:`keep` every class defined in this module (not imported into it), plus ``names``."""
    module = namespace["__name__"]
    own = [n for n, v in namespace.items() if isinstance(v, type) and v.__module__ == module]
    keep(namespace, *own, *names)
