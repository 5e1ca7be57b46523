"""``python -m needle_backend_opencl``: every OpenCL platform/device and whether needle can use it."""

from __future__ import annotations

import sys

from . import discovery, probe


def main() -> int:
    result = probe.probe()
    if not result.ok:
        print(f"opencl unavailable: {result.reason}. {result.hint}")
        return 1
    lines = discovery.describe()
    print("\n".join(lines))
    return 0 if any(line.startswith("opencl:") for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
