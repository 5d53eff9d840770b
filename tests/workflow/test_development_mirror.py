"""Dataset development, run for real against a local mirror of nilearn's hosts.

A server on 127.0.0.1 (tests/httpserver.py) serves tiny synthetic stand-ins for
the files nilearn 0.13.1's ``fetch_development_fmri`` downloads from OSF (the
participants table, each subject's image and fMRIPrep confounds, under their OSF
keys) and the MSDL zip. The shipped ``config/development.yaml`` is used as is;
only the URLs are overridden on the command line, as a mirror user would.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sparseconn import fetch
from tests.conftest import ROOT
from tests.development_mirror import development_mirror_files
from tests.httpserver import MSDL_PATH, Fault, Mirror

pytestmark = pytest.mark.slow

#: nilearn's fetch_development_fmri(n_subjects=4) on the mirror's participants
#: table (122 children then 33 adults): 1 adult and 3 children, adults first.
NILEARN_ORDER = ["pixar123", "pixar001", "pixar002", "pixar003"]


def mirror_config(mirror: Mirror, n_subjects: int = 4) -> list[str]:
    """``--configfile config/development.yaml --config ...`` pointing at ``mirror``."""
    development = f'{{base_url: "{mirror.root}", atlas_url: "{mirror.url(MSDL_PATH)}"}}'
    return [
        "--configfile",
        str(ROOT / "config" / "development.yaml"),
        "--config",
        f"development={development}",
        f"n_subjects={n_subjects}",
    ]


@pytest.fixture(scope="module")
def mirror_files(tmp_path_factory) -> dict[str, bytes]:
    return development_mirror_files(tmp_path_factory.mktemp("mirror"))


@pytest.fixture(scope="module")
def development_run(mirror_files, tmp_path_factory, run_snakemake):
    folder = tmp_path_factory.mktemp("development")
    with Mirror(dict(mirror_files)) as mirror:
        for path, data in mirror_files.items():  # each first delivery is corrupt
            if path.startswith("download/"):
                mirror.faults[path].append(Fault("corrupt", after=len(data) // 2))
        result = run_snakemake(*mirror_config(mirror), "--cores", "2", cwd=folder)
        assert result.returncode == 0, result.stderr[-4000:]
        again = run_snakemake(*mirror_config(mirror), "-n", cwd=folder)
        yield folder, mirror, result, again


def test_order_is_nilearns(mirror_files, tmp_path):
    participants = tmp_path / "participants.tsv"
    participants.write_bytes(mirror_files[fetch.DEVELOPMENT_PARTICIPANTS_PATH])
    assert fetch.development_subjects(participants, 4) == NILEARN_ORDER


def test_downloads_land_in_nilearns_layout(development_run, mirror_files):
    folder, _, _, _ = development_run
    data = folder / "resources/development/development_fmri/development_fmri"
    assert (data / "participants.tsv").read_bytes() == mirror_files[
        fetch.DEVELOPMENT_PARTICIPANTS_PATH
    ]
    index = fetch.development_index()
    for subject in NILEARN_ORDER:
        confounds_key, bold_key = index[subject]
        func = data / fetch.DEVELOPMENT_FUNC_NAME.format(subject=subject)
        assert func.read_bytes() == mirror_files[f"download/{bold_key}/"]
        confounds = data / fetch.DEVELOPMENT_CONFOUNDS_NAME.format(subject=subject)
        assert confounds.read_bytes() == mirror_files[f"download/{confounds_key}/"]
        reduced = pd.read_csv(
            data / fetch.DEVELOPMENT_REDUCED_CONFOUNDS_NAME.format(subject=subject),
            sep="\t",
        )
        assert list(reduced.columns) == list(fetch.DEVELOPMENT_CONFOUND_COLUMNS)
        full = pd.read_csv(confounds, sep="\t")
        np.testing.assert_array_equal(reduced, full[reduced.columns])
    lock = json.loads(
        (folder / "resources/development/checksums.lock.json").read_text()
    )
    assert len(lock["files"]) == 1 + 2 * len(NILEARN_ORDER)


def test_results_in_nilearns_order(development_run):
    folder, _, _, _ = development_run
    results = folder / "results"
    for subject in NILEARN_ORDER:
        name = f"sub-{subject}_atlas-MSDL_timeseries"
        func = results / f"sub-{subject}" / "func"
        series = pd.read_csv(func / f"{name}.tsv", sep="\t")
        assert series.shape == (60, 6)
        sidecar = json.loads((func / f"{name}.json").read_text())
        assert sidecar["RepetitionTime"] == 2.0
        assert any("desc-reducedConfounds" in path for path in sidecar["Confounds"])
    group = results / "group" / "atlas-MSDL_desc-groupsparse_connectome.npz"
    with np.load(group) as fit:
        assert list(fit["subjects"]) == NILEARN_ORDER
        assert fit["precisions"].shape == (4, 6, 6)


def test_each_corrupt_file_is_downloaded_again_once(development_run, mirror_files):
    _, mirror, result, again = development_run
    for path in mirror_files:
        if path.startswith("download/"):
            assert [r.status for r in mirror.requests(path)] == [200, 200]
    assert "Trying to restart job" not in result.stderr
    assert again.returncode == 0, again.stderr
    assert "fetch_" not in again.stdout + again.stderr


def test_too_many_subjects_is_one_clear_line(mirror_files, tmp_path, run_snakemake):
    with Mirror(dict(mirror_files)) as mirror:
        result = run_snakemake(*mirror_config(mirror, 156), "-n", cwd=tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr
    assert "lists 155 subjects; n_subjects 156 is out of range (1 to 155)" in errors[0]
    assert not (tmp_path / "results").exists()
