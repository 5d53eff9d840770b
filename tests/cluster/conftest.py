"""The private SLURM cluster of the cluster tests (tests/cluster/slurm_localhost.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.cluster.slurm_localhost import LocalSlurm, install, missing_programs


@pytest.fixture(scope="session")
def local_slurm() -> Iterator[LocalSlurm]:
    """A one-node SLURM cluster on localhost, stopped (by PID) after the tests.

    Debian's slurm-wlm and munge are installed with apt-get when absent, which
    needs root; without root (or apt-get) the cluster tests are skipped.
    """
    if missing_programs():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.skip(
                f"SLURM programs {missing_programs()} are missing and cannot be "
                "installed here (needs root and apt-get: apt-get install slurm-wlm "
                "munge)"
            )
        install()
        assert missing_programs() == [], "slurm-wlm/munge installed incompletely"
    if os.geteuid() != 0:
        pytest.skip("starting slurmctld/slurmd on localhost needs root")
    cluster = LocalSlurm()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
