"""needle_nn's device suite: do models build, train, save and resume on a device?

Run it against any installed backend, next to the core conformance suite:

    pytest --pyargs needle.testing needle_nn.testing --needle-device NAME

Device selection (``--needle-device``, ``NEEDLE_TEST_DEVICES``,
``NEEDLE_REQUIRE_DEVICES``) and declared known failures come from needle_core's
pytest plugin (``needle.testing.plugin``); this package adds no second one.
``support`` holds the helpers these tests share with the project's own tests.
"""
