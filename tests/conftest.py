"""Fixtures shared by every test: the repository, a seeded generator, Snakemake."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

# Figures are drawn off-screen, whatever the machine.
os.environ["MPLBACKEND"] = "Agg"
import matplotlib

matplotlib.use("Agg")

#: The repository's root (the folder holding the Snakefile).
ROOT = Path(__file__).resolve().parent.parent
#: The Snakemake of the Python running the tests (next to ``sys.executable``).
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder."""
    return ROOT


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator seeded with 0: every test draws the same numbers on every run."""
    return np.random.default_rng(0)


def snakemake_command(*args: str | os.PathLike[str]) -> list[str]:
    """Command line running this repository's workflow with ``args``.

    Uses the ``snakemake`` installed beside the running Python, the repository's
    Snakefile and no workflow profile (tests set what they need) but, as the
    default profile does, jobs in threads of the Snakemake process; add
    ``--directory`` (and ``--configfile``) to run elsewhere than the repository.
    """
    return [
        str(SNAKEMAKE),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--workflow-profile",
        "none",
        "--force-use-threads",
        *map(str, args),
    ]


@pytest.fixture(scope="session")
def snakemake_cmd() -> Callable[..., list[str]]:
    """:func:`snakemake_command`: ``snakemake_cmd("-n", "--directory", tmp_path)``."""
    return snakemake_command


@pytest.fixture(scope="session")
def run_snakemake() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the workflow: ``run_snakemake(*args, cwd=tmp_path)``; output captured.

    Runs in ``cwd`` (``--directory``) with the config files given in ``args``
    (the repository's ``config/config.yaml`` is read only when ``cwd`` holds
    one). Returns the completed process (``returncode``, ``stdout``, ``stderr``).
    """

    def run(
        *args: str | os.PathLike[str], cwd: str | os.PathLike[str], timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            snakemake_command("--directory", cwd, *args),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
