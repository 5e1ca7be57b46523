"""Tools built on the plugin architecture: cross-device checking and the profiler.

Both observe ops and kernels through one interception layer (``_tap``) that is
installed only while a tool is active: with no tool active, ops and kernels run the
exact code they run without this package.
"""

from .check import DivergenceError, check_against
from .profiler import Profile, profile

__all__ = ["DivergenceError", "Profile", "check_against", "profile"]
