"""A meta-path finder that makes ``needle.X`` the very module ``target.X``.

``needle`` is a facade: ``needle.autograd`` *is* ``needle_core.autograd`` (same
module object, so classes are never duplicated) and ``needle.nn`` *is*
``needle_nn.nn``. Works for regular and editable installs because it resolves
through the normal import system.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str, missing_hint: str | None) -> None:
        self.target = target
        self.missing_hint = missing_hint
        self.real_spec: importlib.machinery.ModuleSpec | None = None  # one loader per import

    def create_module(self, spec):  # noqa: ANN001 - importlib protocol
        try:
            module = importlib.import_module(self.target)
        except ModuleNotFoundError as exc:
            top = self.target.split(".")[0]
            if self.missing_hint and exc.name == top:
                raise ModuleNotFoundError(f"{spec.name} needs {self.missing_hint}", name=spec.name) from exc
            raise
        self.real_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Already executed by import_module. The import system has just stamped this
        # alias's spec onto the shared module: put the real one back, or importlib.reload
        # and %autoreload would re-run this no-op loader instead of the module's code
        # (IPython's, having cleared the module first, would leave it empty).
        if self.real_spec is not None:
            module.__spec__ = self.real_spec


class AliasFinder(importlib.abc.MetaPathFinder):
    """Maps ``needle.<prefix>...`` to ``<target>...``."""

    def __init__(self, table: dict[str, tuple[str, str | None]]) -> None:
        self.table = table

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001
        head, _, rest = fullname.partition(".")
        if head != "needle" or not rest:
            return None
        first, _, tail = rest.partition(".")
        entry = self.table.get(first)
        if entry is None:
            return None
        real = entry[0] + ("." + tail if tail else "")
        if tail and importlib.util.find_spec(real) is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real, entry[1]))


def install(table: dict[str, tuple[str, str | None]]) -> None:
    for finder in sys.meta_path:
        if isinstance(finder, AliasFinder) or type(finder).__name__ == "AliasFinder":
            finder.table = table  # reload-safe: one finder, refreshed table
            return
    sys.meta_path.insert(0, AliasFinder(table))
