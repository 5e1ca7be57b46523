"""The header generator's old path: runs ``src/needle_backend_cpu/render.py``.

pip builds the extension in an isolated environment that cannot import needle-core,
so the table is rendered (by ``src/needle_backend_cpu/render.py``, which this old
path runs), committed as ``csrc/elementwise_table.h``, and a test
(needle_backend_cpu/tests/test_cpu_header.py) checks it still matches the table.

    python needle_backend_cpu/tools/gen_header.py          # rewrite the header
    python needle_backend_cpu/tools/gen_header.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_RENDER = Path(__file__).resolve().parent.parent / "src" / "needle_backend_cpu" / "render.py"
_spec = importlib.util.spec_from_file_location("needle_backend_cpu_render", _RENDER)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

HEADER, render, main = _module.HEADER, _module.render, _module.main

if __name__ == "__main__":
    sys.exit(main())
