"""One conformance suite, every backend (docs/design.md §5).

``nox`` runs the default sessions: ``tests(numpy)``, ``tests(cpu)``,
``tests(opencl)``, ``tests(cuda)``, ``distributed``, ``thirdparty``, ``layering``, ``lint``.
``nox -s bench`` runs the benchmark (not a default session; it pins torch==2.13.0).

A ``tests(<backend>)`` session installs core + nn + the numpy backend (the oracle) +
that backend, sets ``NEEDLE_TEST_DEVICES=<device>`` and runs both shipped device
suites (``needle.testing``: kernels, NDArray, ops, autograd; ``needle_nn.testing``:
nn, optim, data, apps, checkpoints, training), the backend's own tests and, in
``tests(numpy)`` only, the device-independent project tests of ``tests/``.
A session whose hardware/runtime is absent is skipped with the probe's reason,
unless ``NEEDLE_REQUIRE_DEVICES`` names the device: then it fails.
"""

from __future__ import annotations

import os
import sys

import nox

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nox_probe  # noqa: E402

nox.options.sessions = ["tests", "distributed", "thirdparty", "layering", "lint"]
nox.options.reuse_existing_virtualenvs = False

CORE = ("./needle_core[testing]", "./needle_nn", "./needle_backend_numpy")
# the device suites every backend runs: needle_core's conformance suite and needle_nn's
SUITES = ("--pyargs", "needle.testing", "needle_nn.testing")
# backend folder -> device name it registers
BACKENDS = {"numpy": "cpu_numpy", "cpu": "cpu", "opencl": "opencl", "cuda": "cuda"}


def _probe(session: nox.Session, device: str, env: dict[str, str]) -> tuple[bool, str]:
    usable, reason, stderr = nox_probe.probe(os.path.join(session.bin, "python"), device, env)
    if stderr.strip():  # shown, never taken as the reason
        session.log(f"probe stderr (not part of the verdict): {stderr.strip().splitlines()[-1][:200]}")
    return usable, reason


def _required() -> set[str]:
    return {d.strip() for d in os.environ.get("NEEDLE_REQUIRE_DEVICES", "").split(",") if d.strip()}


_STACKS_AFTER_S = 600


def _pytest(session: nox.Session, *args: str, env: dict[str, str], allow_empty: bool = False) -> None:
    codes = [0, 5] if allow_empty else [0]  # 5: pytest collected nothing
    # A test stuck past the timeout prints every thread's stack (a hang in CI is then
    # diagnosable from its log); no test comes near it.
    stacks = f"faulthandler_timeout={_STACKS_AFTER_S}"
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", stacks, *args, *session.posargs,
                env=env, success_codes=codes)


@nox.session
@nox.parametrize("backend", [nox.param(b, id=b) for b in BACKENDS])
def tests(session: nox.Session, backend: str) -> None:
    """Both device suites and the backend's own tests on one backend (tests(numpy): also the project tests)."""
    device = BACKENDS[backend]
    extra = () if backend == "numpy" else (f"./needle_backend_{backend}",)
    # the cpu backend also builds its AVX2/AVX-512 modules, so the suite runs with each ISA forced
    build_env = {"NEEDLE_CPU_VARIANTS": "avx2,avx512"} if backend == "cpu" else {}
    session.install(*CORE, *extra, env=build_env)
    env = {"NEEDLE_TEST_DEVICES": device}
    if backend == "cuda":
        # CI never installs pycuda; compiling every kernel source with nvcc catches
        # syntax errors wherever nvcc exists, GPU or not.
        session.run("python", "-m", "needle_backend_cuda.compile_check", env=env)
    own_tests = f"needle_backend_{backend}/tests"  # the backend's own kernel-level tests
    usable, reason = _probe(session, device, env)
    if not usable:
        if device in _required():
            session.error(f"device {device!r} is required (NEEDLE_REQUIRE_DEVICES) but unusable: {reason}")
        # still run the tests that check how an absent device is reported, and the backend's
        # own tests that need no device (the cuda emulator, kernel-source rendering, the probe)
        _pytest(session, "tests", "-m", "absent_device", env=env, allow_empty=True)
        if os.path.isdir(own_tests):
            _pytest(session, own_tests, "-m", "absent_device", env=env, allow_empty=True)
        if backend == "cuda":  # the conformance suite on the real kernel sources, run by the CPU emulator
            emulated = {"NEEDLE_TEST_DEVICES": "cuda_emulated", "NEEDLE_PLUGINS": "needle_cuda_emulated",
                        "PYTHONPATH": "needle_backend_cuda/tests/fakecuda"}
            _pytest(session, "--pyargs", "needle.testing", env=emulated)
        session.skip(f"device {device!r} unusable here: {reason}")
    _pytest(session, *SUITES, env=env)
    if os.path.isdir(own_tests):
        _pytest(session, own_tests, env=env)
    if backend == "numpy":  # the project tests are device-independent: they run once
        # the full set includes the end-to-end runs marked slow (pytest.ini skips them by default)
        _pytest(session, "tests", "-m", "slow or not slow", env=env)


@nox.session
def distributed(session: nox.Session) -> None:
    """Data parallelism on 2 ranks (``mpirun -n 2 --oversubscribe``, this host only) on cpu and cpu_numpy.

    mpi4py and Open MPI come as wheels (``needle_distributed[mpi]``); a missing MPI fails
    the session instead of skipping it.
    """
    session.install(*CORE, "./needle_backend_cpu", "./needle_distributed[mpi]")
    _pytest(session, "needle_distributed/tests", env={"NEEDLE_REQUIRE_MPI": "1"})


@nox.session
def thirdparty(session: nox.Session) -> None:
    """Both device suites on the fixture third-party backend (proof an outsider can plug in and train)."""
    session.install(*CORE, "./tests/fixtures/needle_backend_counting")
    env = {"NEEDLE_TEST_DEVICES": "counting"}
    _pytest(session, *SUITES, env=env)
    _pytest(session, "tests", "-m", "thirdparty", env=env)


@nox.session
def layering(session: nox.Session) -> None:
    """The import contracts: core, nn and distributed never import a backend; backends import only core's ABI."""
    session.install("import-linter", "./needle_core", "./needle_nn", "./needle_backend_numpy", "./needle_distributed")
    # the other backends are only read, not run: their sources on the path spare the C++ build
    sources = os.pathsep.join(f"needle_backend_{b}/src" for b in ("cpu", "opencl", "cuda"))
    session.run("lint-imports", ".importlinter", env={"PYTHONPATH": sources})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """needle backends vs NumPy and PyTorch CPU, ratios from one run (not a default session)."""
    backends = [f"./needle_backend_{b}" for b in ("cpu", "opencl") if os.path.isdir(f"needle_backend_{b}")]
    session.install(*CORE, *backends, "torch==2.13.0")
    session.run("python", "bench/run.py", *session.posargs)
