"""Shared test fixtures: where the read-only shared data lives, and skipping cleanly when it is absent.

The reference data and the specification are read in place from ``../shared`` beside the repository
root (never copied into the repository). Tests that need them skip with the missing path as reason, except
in CI (``CI=true``), where ``../shared`` must be present and a missing path fails the test.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from builders import IN_CI

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
REFERENCE = SHARED / "reference"
SPEC = SHARED / "spec"


def require_shared(path: Path) -> Path:
    """Return `path`; when it does not exist (shared data not checked out) skip the calling test, or fail
    it in CI, where the fidelity tests must run."""
    if not path.exists():
        message = f"shared data not found at {path} (../shared beside the repository root)"
        if IN_CI:
            pytest.fail(message + "; in CI it must be present", pytrace=False)
        pytest.skip(message)
    return path


def reference_case(name: str) -> Path:
    """Path of ``reference/cases/<name>.json``, skipping the test when absent."""
    return require_shared(REFERENCE / "cases" / f"{name}.json")


@pytest.fixture
def reference_dir() -> Path:
    return require_shared(REFERENCE)


@pytest.fixture
def spec_dir() -> Path:
    return require_shared(SPEC)

# pytest-jupyter: jp_serverapp / jp_fetch fixtures for the server extension tests
pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="module")
def pool():
    """A spawned pool of 2 workers shared by a module's sweeps and studies (`executor=pool`)."""
    from vp_jupyter.runner import LocalProcessExecutor

    executor = LocalProcessExecutor(2)
    yield executor
    executor.shutdown()


@pytest.fixture(autouse=True)
def _isolated_run_store(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own empty archive store: `vp.run` records runs by default (in $VP_JUPYTER_STORE),
    and the suite must never write into the developer's real store. Subprocesses (the CLI tests) inherit it."""
    root = tmp_path_factory.mktemp("vp_store")
    monkeypatch.setenv("VP_JUPYTER_STORE", str(root))
    return root


@pytest.fixture(scope="session", autouse=True)
def _compiled_step_loop_ready() -> None:
    """Compile the UM3 step loop (or load it from Numba's cache) once, before any test: worker processes
    then load it from the cache rather than each compiling it within some test's time limit."""
    from vp_jupyter.engine import um3_compiled

    um3_compiled.warm_up()
