"""needle's conformance suite: kernels, NDArray, ops and autograd on every device.

Run it against any installed backend: ``pytest --pyargs needle.testing
--needle-device NAME``. The pytest plugin (``needle.testing.plugin``, registered
through the ``pytest11`` entry point) provides the ``needle_device`` fixture.
"""
