"""Optional extensions of ``needle train``, found in the ``needle.train_hooks`` entry-point group.

An entry point names ``attach(args) -> hook | None``; the first non-None hook is used
(needle-distributed's takes over under ``mpirun``). needle-nn never imports a hook's
package. A hook provides:

- ``prepare(task, optimizer) -> (task, optimizer)``: before a checkpoint is restored;
- ``batch_callback(on_batch) -> on_batch``: wraps the per-batch progress callback;
- ``evaluate(batches, model, loss_fn, optimizer) -> (accuracy, loss)``: replaces
  ``run_epoch`` for validation;
- ``failed(exc)``: the run raised ``exc`` (a usage error included) after the hook
  attached; the hook may end the process (a distributed run must stop its other
  ranks, which would otherwise wait for this one). Returning lets the error surface.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from typing import Any


def load_train_hook(args: argparse.Namespace) -> Any | None:
    for ep in sorted(importlib.metadata.entry_points(group="needle.train_hooks"), key=lambda e: e.name):
        hook = ep.load()(args)
        if hook is not None:
            return hook
    return None
