"""Runs shared by the workflow tests of a session (each costs half a minute)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"
#: The default synthetic run, smaller: 3 subjects (QC-FC needs 3) of 100 volumes.
DEFAULT_RUN_SETTINGS = {"n_subjects": 3, "synthetic": {"n_volumes": 100}}


@pytest.fixture(scope="session")
def default_run(tmp_path_factory, run_snakemake) -> Path:
    """The folder of a complete default synthetic run (:data:`DEFAULT_RUN_SETTINGS`).

    Its ``test.yaml`` holds the settings added to ``config/config.yaml``; tests
    read it and must not write into ``results/``.
    """
    folder = tmp_path_factory.mktemp("default_run")
    config = folder / "test.yaml"
    config.write_text(yaml.safe_dump(DEFAULT_RUN_SETTINGS))
    result = run_snakemake(
        "--configfile", ROOT_CONFIG, config, "--cores", "2", cwd=folder, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder
