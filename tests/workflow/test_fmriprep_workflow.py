"""Dataset fmriprep, run for real on a generated fMRIPrep tree (tests/fmriprep_tree).

The tree: sub-01 with 2 sessions x 2 runs, sub-02 with one run (and a T1w-space
run the space filter leaves out); its confounds files are nilearn's real fMRIPrep
tables (v21 and older layouts), lengthened to 100 volumes (30 would leave the
strategies' regressors no degrees of freedom). With ``scrubbing``, the two v21
runs lose every volume and are left out (listed in the scans' QC table, their
time series written and flagged), the other runs of a session are concatenated;
the spiky run is censored at both ends.
Then every bad input of the issue stops the dry run with one line naming the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.fmriprep_tree import make_fmriprep_tree

pytestmark = pytest.mark.slow

ERROR_PREFIX = "sparseconn: error: "
N_VOLUMES = 100
SPACE = "space-MNI152NLin2009cAsym"
# Group units as named in the .npz (the scan's entities, run dropped).
UNIT_SPACE = f"{SPACE}_res-2"
# BIDS entities in the schema's order (atlas before res), then stat (BEP017,
# unknown to the schema: just before desc), desc last, then the suffix.
BIDS_NAME = re.compile(
    r"^sub-[A-Za-z0-9]+(_ses-[A-Za-z0-9]+)?_task-[A-Za-z0-9]+(_acq-[A-Za-z0-9]+)?"
    r"(_run-[0-9]+)?_space-[A-Za-z0-9]+_atlas-[A-Za-z0-9]+(_res-[A-Za-z0-9]+)?"
    r"(_stat-[a-z]+)?(_desc-[A-Za-z0-9]+)?_(timeseries|relmat|regions)\.(tsv|json)$"
)


def write_config(folder: Path, tree, **settings) -> Path:
    path = folder / "fmriprep.yaml"
    config = {
        "dataset": "fmriprep",
        "fmriprep_dir": str(tree.root),
        "atlas_maps": str(tree.maps),
        "atlas_labels": str(tree.labels),
        "atlas_name": "test",
        **settings,
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def scrubbed(tmp_path_factory, run_snakemake):
    folder = tmp_path_factory.mktemp("fmriprep")
    tree = make_fmriprep_tree(folder, n_volumes=N_VOLUMES)
    config = write_config(folder, tree, denoise_strategy="scrubbing")
    result = run_snakemake("--cores", "2", "--configfile", config, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, tree


def test_runs_end_to_end_with_group_and_figures(scrubbed):
    folder, _ = scrubbed
    results = folder / "results"
    with np.load(results / "group/atlas-test_desc-groupsparse_connectome.npz") as fit:
        units = [str(u) for u in fit["subjects"]]
        assert fit["precisions"].shape[0] == 3
    # runs concatenated per subject and session: names without run
    assert units == [
        f"sub-01_ses-1_task-rest_{UNIT_SPACE}",
        f"sub-01_ses-2_task-rest_{UNIT_SPACE}",
        f"sub-02_task-rest_{UNIT_SPACE}",
    ]
    with np.load(results / "group/atlas-test_desc-graphlasso_connectome.npz") as fit:
        assert str(fit["subject"]) == units[0]
    figures = sorted(p.name for p in (results / "figures").glob("*.png"))
    assert f"{units[0]}_atlas-test_desc-groupsparse_connectome.png" in figures
    assert len(figures) >= 10


def test_censored_runs_are_excluded_with_their_reason(scrubbed):
    folder, tree = scrubbed
    table = pd.read_csv(
        folder / "results/group/atlas-test_desc-scans_qc.tsv",
        sep="\t",
        keep_default_na=False,
    )
    v21 = sorted(scan.name for scan in tree.scans if scan.source == "v21")
    in_space = sorted(scan.name for scan in tree.scans if "_space-T1w" not in scan.name)
    assert sorted(table["scan"]) == in_space
    excluded = table[~table["included"]]
    assert sorted(excluded["scan"]) == v21
    assert all("0 of 100 volumes kept" in reason for reason in excluded["reason"])
    assert (table[table["included"]]["reason"] == "").all()
    assert (table["degrees_of_freedom"].astype(int) > 10).all()
    # Excluded runs keep their time series, for inspection, flagged as such.
    for name in v21:
        (series,) = (folder / "results").rglob(f"{name[:30]}*_timeseries.tsv")
        sidecar = json.loads(series.with_suffix(".json").read_text())
        assert "0 of 100 volumes kept" in sidecar["ExcludedFromGroup"]
        assert sidecar["CensoringApplied"] is False
        assert sidecar["StartTime"] == 0.0  # every volume is a row
        assert pd.read_csv(series, sep="\t").shape[0] == N_VOLUMES
        assert any("uncensored" in warning for warning in sidecar["Warnings"])


def test_every_output_name_follows_bids_and_has_its_sidecar(scrubbed):
    folder, tree = scrubbed
    results = folder / "results"
    description = json.loads((results / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    # the subjects' folders (logs/ and the other folders are not BIDS files)
    subject_files = [p for p in results.glob("sub-*/**/*") if p.is_file()]
    assert subject_files
    for path in subject_files:
        assert BIDS_NAME.match(path.name), path.name
        entities = dict(part.split("-", 1) for part in path.name.split("_")[:-1])
        folder_parts = path.relative_to(results).parts
        assert folder_parts[0] == f"sub-{entities['sub']}"
        if "ses" in entities:
            assert folder_parts[1] == f"ses-{entities['ses']}"
        assert folder_parts[-2] == "func"
    series = [p for p in subject_files if p.name.endswith("_timeseries.tsv")]
    assert len(series) == 5  # the two runs censored away included
    links = description["DatasetLinks"]
    assert (results / links["preprocessed"]).resolve() == tree.root.resolve()
    for path in series:
        sidecar = json.loads(path.with_suffix(".json").read_text())
        if sidecar["ExcludedFromGroup"]:
            continue
        assert sidecar["RepetitionTime"] == 2.0
        # BEP012 timing: the first row is the first kept volume
        assert sidecar["SamplingFrequency"] == 0.5
        first_kept = min(set(range(N_VOLUMES)) - set(sidecar["CensoredVolumes"]))
        assert sidecar["StartTime"] == 2.0 * first_kept
        assert sidecar["RepetitionTimeSource"] == "BOLD JSON sidecar (RepetitionTime)"
        assert sidecar["DenoiseStrategy"]["name"] == "scrubbing"
        assert sidecar["DenoiseStrategy"]["fd_threshold"] == 0.5
        rows = pd.read_csv(path, sep="\t").shape[0]
        # one row per volume not censored (no separate row-to-volume list)
        assert rows == sidecar["NumberOfVolumesKept"]
        assert rows + len(sidecar["CensoredVolumes"]) == N_VOLUMES
        assert sidecar["NumberOfVolumesCensored"] == len(sidecar["CensoredVolumes"])
        assert "RowsAreVolumes" not in sidecar
        assert 0 in sidecar["CensoredVolumes"]  # non-steady-state volume
        # Sources: BIDS URIs into the linked datasets, no local paths.
        bold, confounds, maps, _ = sidecar["Sources"]
        assert bold.startswith("bids:preprocessed:sub-")
        assert bold.endswith("_desc-preproc_bold.nii.gz")
        assert (tree.root / bold.split(":", 2)[2]).is_file()
        assert confounds.startswith("bids:preprocessed:sub-")
        assert maps == "bids:atlas:atlas_maps.nii.gz"
        dof = sidecar["DegreesOfFreedom"]
        assert dof["Volumes"] == rows
        assert (
            dof["Remaining"]
            == rows - dof["Detrending"] - dof["Filter"] - dof["Confounds"]
        )


def test_a_rerun_has_nothing_to_do(scrubbed, run_snakemake):
    folder, _ = scrubbed
    config = folder / "fmriprep.yaml"
    result = run_snakemake("-n", "--configfile", config, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr


# ------------------------------------------------------------------ bad input


def _error_line(result) -> str:
    assert result.returncode != 0, result.stderr
    lines = [
        line for line in result.stderr.splitlines() if line.startswith(ERROR_PREFIX)
    ]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _bold_without_confounds(tree):
    scan = next(s for s in tree.scans if s.name.startswith("sub-02_"))
    scan.confounds.unlink()
    return {}, scan.bold.name


def _short_confounds(tree):
    scan = tree.scans[0]
    lines = scan.confounds.read_text().splitlines(keepends=True)
    scan.confounds.write_text("".join(lines[:-3]))
    return {}, scan.confounds.name


def _unknown_strategy(tree):
    return {"denoise_strategy": "aroma"}, "denoise_strategy"


def _absent_space(tree):
    return {"space": "MNI152NLin6Asym"}, "MNI152NLin6Asym"


def _all_runs_censored(tree):
    # sub-01 ses-1 run-1 is a v21 table: scrubbing censors all its volumes
    settings = {
        "participant_label": ["01"],
        "session": "1",
        "run": 1,
        "denoise_strategy": "scrubbing",
    }
    return settings, "sub-01_ses-1_task-rest_run-1_desc-confounds_timeseries.tsv"


@pytest.mark.parametrize(
    "make_bad",
    [
        _bold_without_confounds,
        _short_confounds,
        _unknown_strategy,
        _absent_space,
        _all_runs_censored,
    ],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path, run_snakemake, make_bad):
    tree = make_fmriprep_tree(tmp_path, extra_space=None)
    settings, named = make_bad(tree)
    config = write_config(tmp_path, tree, **settings)
    result = run_snakemake("-n", "--configfile", config, cwd=tmp_path)
    line = _error_line(result)
    assert named in line, line
    assert not (tmp_path / "results").exists()


# ------------------------------------------------- config values as people type


@pytest.fixture(scope="module")
def dry_tree(tmp_path_factory):
    """A tree (with sub-02 also in T1w space) and its config, for dry runs."""
    folder = tmp_path_factory.mktemp("typed")
    tree = make_fmriprep_tree(folder, n_volumes=N_VOLUMES)
    return folder, write_config(folder, tree)


def _planned(stdout: str, desc: str = "groupsparse") -> list[str]:
    """The group elements whose precision relmat of ``desc`` a dry run plans.

    A unit's name is its entities; the relmat's name has the atlas inserted in
    BIDS order (before ``res``). Rule all names the plotted subject's graph lasso
    relmats, not the group-sparse ones (``outputs_to_request``): the group-sparse
    elements are read off the science check's jobs, which name their subjects.
    """
    if desc == "groupsparse":
        batches = re.findall(
            r"^Job \d+: Held-out log-likelihood of graph lasso.*, subjects (.*)$",
            stdout,
            re.MULTILINE,
        )
        return sorted({unit for batch in batches for unit in batch.split()})
    pattern = (
        rf"([^\s/]+)_atlas-test(_res-[A-Za-z0-9]+)?_stat-precision_desc-{desc}"
        r"_relmat\.tsv"
    )
    return sorted({stem + res for stem, res in re.findall(pattern, stdout)})


MNI_RES = "space-MNI152NLin2009cAsym_res-2"


@pytest.mark.parametrize(
    ("settings", "units"),
    [
        # --config participant_label=02 reaches the workflow as the number 2
        (["participant_label=02"], [f"sub-02_task-rest_{MNI_RES}"]),
        (["participant_label=sub-01,02"], None),  # both participants
        (["session=ses-2"], [f"sub-01_ses-2_task-rest_{MNI_RES}"]),
        (["session=2", "run=run-1"], [f"sub-01_ses-2_task-rest_{MNI_RES}"]),
        (
            ["concatenate_runs=false", "participant_label=01", "session=1"],
            [f"sub-01_ses-1_task-rest_run-{r}_{MNI_RES}" for r in (1, 2)],
        ),
        (["res=res-2", "concatenate_runs=true"], None),
    ],
)
def test_command_line_values_do_what_they_say(dry_tree, run_snakemake, settings, units):
    folder, config = dry_tree
    result = run_snakemake(
        "-n", "--configfile", config, "--config", *settings, cwd=folder
    )
    assert result.returncode == 0, result.stderr[-2000:]
    everyone = [
        f"sub-01_ses-1_task-rest_{MNI_RES}",
        f"sub-01_ses-2_task-rest_{MNI_RES}",
        f"sub-02_task-rest_{MNI_RES}",
    ]
    assert _planned(result.stdout) == (everyone if units is None else units)


def test_plot_subject_typed_as_a_number(dry_tree, run_snakemake):
    folder, config = dry_tree
    result = run_snakemake(
        "-n", "--configfile", config, "--config", "plot_subject=02", cwd=folder
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _planned(result.stdout, "graphlasso") == [f"sub-02_task-rest_{MNI_RES}"]


def test_native_space_with_a_template_atlas_is_an_error(dry_tree, run_snakemake):
    folder, config = dry_tree
    result = run_snakemake(
        "-n", "--configfile", config, "--config", "space=T1w", cwd=folder
    )
    line = _error_line(result)
    assert line == (
        f"{ERROR_PREFIX}{config}, --config: atlas_maps is taken to be in MNI152 "
        "space (atlas_space unset) but the runs are in space T1w (space): the "
        "maps would be read at the wrong voxels; select runs in an MNI152 space "
        "(space: MNI152NLin2009cAsym), or, if atlas_maps is in T1w space, set "
        "atlas_space: T1w"
    )
    assert not (folder / "results").exists()
    # declared: the atlas is in the runs' space
    result = run_snakemake(
        "-n",
        "--configfile",
        config,
        "--config",
        "space=T1w",
        "atlas_space=T1w",
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _planned(result.stdout) == ["sub-02_task-rest_space-T1w"]


def test_one_run_at_two_resolutions_is_an_error(tmp_path, run_snakemake):
    tree = make_fmriprep_tree(tmp_path, extra_space=None, n_volumes=N_VOLUMES)
    bold = tree.scan(f"sub-02_task-rest_{MNI_RES}").bold
    other = bold.with_name(bold.name.replace("_res-2_", "_res-1_"))
    other.write_bytes(bold.read_bytes())
    config = write_config(tmp_path, tree)
    line = _error_line(run_snakemake("-n", "--configfile", config, cwd=tmp_path))
    assert line == (
        f"{ERROR_PREFIX}{other}: same run (sub-02_task-rest) as {bold.name} (res-1 "
        "and res-2): both would enter the group stage, counting the run twice; "
        "choose one with the config key res (res labels present: 1, 2)"
    )
    assert not (tmp_path / "results").exists()
    result = run_snakemake(
        "-n", "--configfile", config, "--config", "res=2", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"sub-02_task-rest_{MNI_RES}" in _planned(result.stdout)
