"""Dataset development: our time series equal nilearn's example on the same files.

The workflow runs against a loopback mirror of nilearn's hosts (4 subjects, up to
the time series). Then nilearn 0.13.1 itself, offline, does what its group-sparse
example ``plot_multi_subject_connectome.py`` does: ``fetch_development_fmri(
n_subjects=4)`` given our downloads as its ``data_dir`` (it finds the image,
confounds and participants files in its own layout, picks the subjects and writes
its reduced confounds), then ``NiftiMapsMasker(maps, resampling_target="maps",
detrend=True, high_variance_confounds=True, low_pass=None, high_pass=0.01, t_r=2,
standardize="zscore_sample", standardize_confounds=True).fit_transform(func,
confounds=confounds)`` per subject.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from sparseconn import fetch
from tests.conftest import ROOT
from tests.development_mirror import development_mirror_files
from tests.httpserver import MSDL_PATH, Mirror

nilearn = pytest.importorskip("nilearn")
from nilearn.datasets import fetch_development_fmri  # noqa: E402
from nilearn.maskers import NiftiMapsMasker  # noqa: E402

pytestmark = [pytest.mark.parity, pytest.mark.slow]

TOLERANCE = 1e-4
N_SUBJECTS = 4


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory, run_snakemake):
    """The workflow's run folder, extraction done, on a loopback mirror."""
    files = development_mirror_files(tmp_path_factory.mktemp("mirror"), N_SUBJECTS)
    folder = tmp_path_factory.mktemp("run")
    with Mirror(files) as mirror:
        development = (
            f'{{base_url: "{mirror.root}", atlas_url: "{mirror.url(MSDL_PATH)}"}}'
        )
        result = run_snakemake(
            "--configfile",
            ROOT / "config" / "development.yaml",
            "--config",
            f"development={development}",
            f"n_subjects={N_SUBJECTS}",
            "--until",
            "extract_timeseries",
            "--cores",
            "2",
            cwd=folder,
        )
    assert result.returncode == 0, result.stderr[-4000:]
    return folder


def test_time_series_equal_nilearns_example(downloaded, tmp_path):
    ours = downloaded / "resources/development" / fetch.DEVELOPMENT_FOLDER
    data_dir = tmp_path / "nilearn_data"
    theirs = data_dir / fetch.DEVELOPMENT_FOLDER
    theirs.mkdir(parents=True)
    for path in ours.iterdir():  # not our reduced confounds: nilearn writes its own
        if "reducedConfounds" not in path.name:
            shutil.copy(path, theirs / path.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = fetch_development_fmri(
            n_subjects=N_SUBJECTS, data_dir=data_dir, verbose=0
        )
        masker = NiftiMapsMasker(
            str(downloaded / "resources/adhd/msdl/msdl_rois.nii"),
            resampling_target="maps",
            detrend=True,
            high_variance_confounds=True,
            low_pass=None,
            high_pass=0.01,
            t_r=2,
            standardize="zscore_sample",
            standardize_confounds=True,
        )
        expected = [
            masker.fit_transform(func, confounds=confounds)
            for func, confounds in zip(dataset.func, dataset.confounds, strict=True)
        ]
    subjects = [p.removeprefix("sub-") for p in dataset.phenotypic["participant_id"]]
    # the same subjects, in the same order, as ours
    assert subjects == fetch.development_subjects(ours / "participants.tsv", 4)
    for subject, reference in zip(subjects, expected, strict=True):
        series = pd.read_csv(
            downloaded
            / f"results/sub-{subject}/func/sub-{subject}_atlas-MSDL_timeseries.tsv",
            sep="\t",
        ).to_numpy()
        assert series.shape == reference.shape
        np.testing.assert_allclose(series, reference, rtol=0, atol=TOLERANCE)
