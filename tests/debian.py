"""Debian packages the tests need, installed with apt-get when absent (root only).

The test command of the README's Quick start must work on a fresh machine: the
tests that need a system program (Chromium for the report, SLURM and munge for
the cluster) install its Debian package themselves, as CI would otherwise have
to. Maintainer scripts are kept from starting services (``policy-rc.d``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


def can_install() -> bool:
    """Whether apt-get can be run here (root and apt-get present)."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(packages: Sequence[str]) -> None:
    """``apt-get update`` then install ``packages`` without recommends."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = not policy.exists()
    if own_policy:
        # exit 101: maintainer scripts must not start services
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        lock = ["-o", "DPkg::Lock::Timeout=600"]
        subprocess.run(["apt-get", *lock, "update", "-q"], env=env, check=True)
        install = ["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends"]
        subprocess.run([*install, *packages], env=env, check=True)
    finally:
        if own_policy:
            policy.unlink(missing_ok=True)
