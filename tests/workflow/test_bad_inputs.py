"""Bad input files stop their job with one clear line and leave no partial output.

One real run on a subjects sheet (``dataset: sheet``) where every subject but one
carries a different defect; with ``--keep-going`` each bad subject's job fails on
its own, printing ``sparseconn: error: <file>: <problem>``, while the good subject
completes.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers import make_func, make_maps

pytestmark = pytest.mark.slow

N_VOLUMES = 40


def _without_time_unit(path: Path, rng) -> Path:
    """A 4D image whose header states no time unit, pixdim[4] left at 1.0."""
    make_func(path, rng, n_volumes=N_VOLUMES, t_r=None)
    image = nib.load(path)
    header = image.header.copy()
    header.set_xyzt_units("mm", "unknown")
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), image.affine, header), path)
    assert nib.load(path).header["pixdim"][4] == 1.0
    return path


def _confounds(path: Path, rng, n_rows=N_VOLUMES, cell=None) -> Path:
    """A 3-column confounds TSV; ``cell=(row, column, text)`` plants a bad value."""
    frame = pd.DataFrame(rng.standard_normal((n_rows, 3)), columns=["a", "b", "c"])
    frame = frame.astype(object)
    if cell is not None:
        frame.loc[cell[0], cell[1]] = cell[2]
    frame.to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory, run_snakemake):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("bad")
    data = folder / "data"
    data.mkdir()
    make_maps(data / "atlas.nii.gz", rng)
    good = data / "good_bold.nii.gz"
    make_func(good, rng, n_volumes=N_VOLUMES)
    conf = _confounds(data / "good.tsv", rng)

    (data / "garbage_bold.nii.gz").write_bytes(b"definitely not an image")
    truncated = data / "truncated_bold.nii.gz"
    make_func(truncated, rng, n_volumes=N_VOLUMES)
    truncated.write_bytes(truncated.read_bytes()[:-4000])
    nib.save(
        nib.Nifti1Image(np.ones((9, 10, 8), np.float32), np.diag([3.0, 3, 3, 1])),
        data / "flat_bold.nii.gz",
    )
    far = np.diag([3.0, 3, 3, 1])
    far[:3, 3] = 600
    make_func(data / "far_bold.nii.gz", rng, n_volumes=N_VOLUMES, affine=far)
    # nibabel's default header: pixdim[4] 1.0, time unit unknown (no TR stated)
    unitless = _without_time_unit(data / "unitless_bold.nii.gz", rng)
    bad_conf = {
        "rows": _confounds(data / "rows.tsv", rng, n_rows=N_VOLUMES - 3),
        "nan": _confounds(data / "nan.tsv", rng, cell=(7, "b", "nan")),
        "text": _confounds(data / "text.tsv", rng, cell=(2, "c", "high")),
        "inf": _confounds(data / "inf.tsv", rng, cell=(5, "a", "inf")),
    }
    rows = [
        ("good", good, conf),
        ("garbage", data / "garbage_bold.nii.gz", conf),
        ("truncated", truncated, conf),
        ("flat", data / "flat_bold.nii.gz", conf),
        ("far", data / "far_bold.nii.gz", conf),
        *[(name, good, path) for name, path in bad_conf.items()],
        ("nounit", unitless, conf),
    ]
    sheet = folder / "subjects.tsv"
    pd.DataFrame(
        [{"subject": s, "func": str(f), "confounds": str(c)} for s, f, c in rows]
        + [{"subject": "unitless", "func": str(unitless), "t_r": 2.5}]
    ).to_csv(sheet, sep="\t", index=False)
    config = folder / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "dataset": "sheet",
                "subjects_sheet": str(sheet),
                "atlas_maps": str(data / "atlas.nii.gz"),
            }
        )
    )
    result = run_snakemake(
        "--configfile", config, "--cores", "2", "--keep-going", cwd=folder
    )
    return folder, result


def _error_lines(result) -> list[str]:
    return [
        line
        for line in result.stderr.splitlines()
        if line.startswith("sparseconn: error: ")
    ]


@pytest.mark.parametrize(
    ("subject", "file_name", "problem"),
    [
        ("garbage", "garbage_bold.nii.gz", "not a readable NIfTI image"),
        ("truncated", "truncated_bold.nii.gz", "truncated"),
        ("flat", "flat_bold.nii.gz", "3D image of shape (9, 10, 8)"),
        ("far", "far_bold.nii.gz", "field of view does not overlap any map"),
        ("rows", "rows.tsv", "37 rows of confounds but the functional image has 40"),
        ("nan", "nan.tsv", "NaN or infinite value 'nan' in column 'b'"),
        ("text", "text.tsv", "non-numeric value 'high' in column 'c' at data row 3"),
        ("inf", "inf.tsv", "NaN or infinite value 'inf' in column 'a'"),
        (
            "nounit",
            "unitless_bold.nii.gz",
            "no repetition time: the NIfTI header does not state its time unit "
            "(xyzt_units), so its pixdim[4] 1 is not a repetition time; give t_r in "
            "the subjects sheet (column t_r) or in the config (t_r)",
        ),
    ],
)
def test_each_bad_input_fails_its_job_with_one_line(
    failed_run, subject, file_name, problem
):
    folder, result = failed_run
    assert result.returncode != 0
    matching = [
        line for line in _error_lines(result) if file_name in line and problem in line
    ]
    assert len(matching) == 1, "\n".join(_error_lines(result))
    func = folder / "results" / f"sub-{subject}" / "func"
    assert not list(func.glob("*timeseries*")) if func.exists() else True


def test_good_subject_completes_and_nothing_partial_remains(failed_run):
    folder, result = failed_run
    good = folder / "results" / "sub-good" / "func"
    assert (good / "sub-good_atlas-custom_timeseries.tsv").is_file()
    leftovers = [p for p in (folder / "results").rglob("*") if ".tmp" in p.name]
    assert leftovers == []
    # one error line per failed job, nothing else
    assert len(_error_lines(result)) == 9


def test_sheet_t_r_wins_over_a_header_without_time_unit(failed_run):
    folder, _ = failed_run
    func = folder / "results" / "sub-unitless" / "func"
    sidecar = json.loads(
        (func / "sub-unitless_atlas-custom_timeseries.json").read_text()
    )
    assert sidecar["RepetitionTime"] == 2.5
    assert sidecar["RepetitionTimeSource"] == (
        "subjects sheet (t_r); the NIfTI header's pixdim[4] 1 was ignored: its time "
        "unit is unknown"
    )
    log = (folder / "results/logs/extract_timeseries/unitless.log").read_text()
    assert "the header's pixdim[4] 1 is ignored (its time unit is unknown)" in log
