"""needle-nn: modules, optimisers, data, the course's apps, checkpoints and ``needle train``.

Users reach it through the ``needle`` facade (``needle.nn``, ``needle.optim``,
``needle.data``, ``needle.apps``, ``ndl.save``/``ndl.load``). Importing this package
imports nothing heavy; each subpackage loads on first use.
"""

__version__ = "0.1.0"
