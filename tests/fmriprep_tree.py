"""A small fMRIPrep-like derivatives dataset for the tests, with real confounds.

The confounds tables are the real fMRIPrep outputs nilearn ships for its own tests
(``nilearn/interfaces/fmriprep/data``, 30 volumes each): ``test-v21_desc-confounds_
timeseries`` (fMRIPrep >= 21 layout: 3 non-steady-state volumes, and so much
motion that the scrubbing strategy censors every volume) and ``test_desc-confounds_
regressors`` (older layout: 1 non-steady-state volume, 126 aCompCor components in
3 masks, no motion outlier). One scan gets a copy of the older table with three
framewise-displacement spikes, so that scrubbing censors volumes inside the scan
and at its end. The BOLD images are small (20 x 24 x 20 voxels of 8 mm, TR 2 s
in the header and in the JSON sidecar) and carry the signals of a 6-map synthetic
atlas plus confound-driven and random noise.

30 volumes are too few to clean with these strategies (``simple`` regresses 27
columns, ``compcor`` 85 on the older table): the residuals would be numerical
noise. For signal-level tests, ``n_volumes`` extends every table (see
:func:`extend_table`): the real rows first, then mirrored copies of them with a
1 % jitter, so that the columns, their names, the JSON and the first 30 rows stay
the real ones.

nilearn is only needed to find those tables (it is in the ``test`` extra).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from sparseconn import synthetic

#: Func grid: 8 mm voxels covering the synthetic brain.
FUNC_SHAPE = (20, 24, 20)
FUNC_AFFINE = np.array(
    [[8.0, 0, 0, -76.0], [0, 8.0, 0, -114.0], [0, 0, 8.0, -64.0], [0, 0, 0, 1]]
)
#: Atlas grid: 10 mm voxels (the func is resampled onto it).
ATLAS_SHAPE = (15, 19, 14)
ATLAS_AFFINE = np.array(
    [[10.0, 0, 0, -70.0], [0, 10.0, 0, -110.0], [0, 0, 10.0, -50.0], [0, 0, 0, 1]]
)
N_REGIONS = 6
T_R = 2.0
SPACE = "MNI152NLin2009cAsym"
#: Volumes given a framewise displacement of 0.9 mm in the "spiky" table (-1:
#: the last volume).
FD_SPIKES = (10, 13, 29, -1)


def nilearn_confounds_dir() -> Path:
    """Folder of the fMRIPrep confounds tables shipped with nilearn."""
    import nilearn.interfaces.fmriprep as fmriprep_interface

    return Path(fmriprep_interface.__file__).parent / "data"


#: Source tables: name -> (file stem in nilearn's data folder, FD spikes added).
SOURCES = {
    "v21": ("test-v21_desc-confounds_timeseries", ()),
    "old": ("test_desc-confounds_regressors", ()),
    "spiky": ("test_desc-confounds_regressors", FD_SPIKES),
}


@dataclass(frozen=True)
class TreeScan:
    """One generated scan: paths, entities and which source table it got."""

    bold: Path
    confounds: Path
    source: str
    name: str


@dataclass(frozen=True)
class FmriprepTree:
    """The generated dataset.

    Attributes
    ----------
    root : Path
        The derivatives folder (``dataset_description.json``, ``sub-*``).
    maps, labels : Path
        The atlas (outside the tree, beside it).
    scans : list of TreeScan
        Every BOLD image written, in sorted-name order.
    """

    root: Path
    maps: Path
    labels: Path
    scans: list[TreeScan]

    def scan(self, name: str) -> TreeScan:
        """The scan whose BIDS prefix is ``name``."""
        return next(s for s in self.scans if s.name == name)


#: (entities of the BOLD name, confounds suffix, source table).
LAYOUT = [
    (
        [("sub", "01"), ("ses", "1"), ("task", "rest"), ("run", "1")],
        "timeseries",
        "v21",
    ),
    (
        [("sub", "01"), ("ses", "1"), ("task", "rest"), ("run", "2")],
        "timeseries",
        "old",
    ),
    (
        [("sub", "01"), ("ses", "2"), ("task", "rest"), ("run", "1")],
        "timeseries",
        "spiky",
    ),
    (
        [("sub", "01"), ("ses", "2"), ("task", "rest"), ("run", "2")],
        "timeseries",
        "v21",
    ),
    ([("sub", "02"), ("task", "rest")], "regressors", "old"),
]


def _name(entities) -> str:
    return "_".join(f"{k}-{v}" for k, v in entities)


def extend_table(
    table: pd.DataFrame, n_volumes: int, rng: np.random.Generator
) -> pd.DataFrame:
    """A confounds table lengthened to ``n_volumes`` rows.

    Rows 0..29 are the real ones; then the real block mirrored, forward, mirrored,
    ... with Gaussian jitter of 1 % of each column's standard deviation (so that
    the columns are not collinear). Outlier indicator columns
    (``non_steady_state*``, ``motion_outlier*``) are 0 after the real rows; the
    first row keeps its missing derivatives.
    """
    n_real = len(table)
    values = table.to_numpy(dtype=np.float64)
    filled = values.copy()
    filled[0] = np.where(np.isnan(values[0]), values[1], values[0])
    blocks, forward = [], True
    while sum(len(b) for b in blocks) < n_volumes:
        blocks.append(filled if forward else filled[::-1])
        forward = not forward
    extended = np.vstack(blocks)[:n_volumes]
    scale = np.nan_to_num(filled.std(axis=0))
    extended[n_real:] += (
        0.01 * scale * rng.standard_normal((n_volumes - n_real, values.shape[1]))
    )
    indicators = [
        j
        for j, c in enumerate(table.columns)
        if "non_steady_state" in c or "motion_outlier" in c
    ]
    extended[n_real:, indicators] = 0.0
    for name in ("framewise_displacement", "std_dvars", "dvars", "rmsd"):
        if name in table.columns:
            j = table.columns.get_loc(name)
            extended[:, j] = np.abs(extended[:, j])
    extended[0] = values[0]
    return pd.DataFrame(extended, columns=table.columns)


def _write_confounds(
    source: str, destination: Path, n_volumes: int | None, rng: np.random.Generator
) -> None:
    stem, spikes = SOURCES[source]
    folder = nilearn_confounds_dir()
    shutil.copyfile(folder / f"{stem}.json", destination.with_suffix(".json"))
    if not spikes and n_volumes is None:
        shutil.copyfile(folder / f"{stem}.tsv", destination)
        return
    table = pd.read_csv(folder / f"{stem}.tsv", sep="\t")
    if n_volumes is not None:
        table = extend_table(table, n_volumes, rng)
    for index in spikes:
        table.loc[index % len(table), "framewise_displacement"] = 0.9
    table.to_csv(destination, sep="\t", index=False, na_rep="n/a", float_format="%.10g")


def _bold_data(
    rng: np.random.Generator, maps_on_func: np.ndarray, confounds: pd.DataFrame
) -> np.ndarray:
    """Baseline + region signals + confound-driven + white noise, (x, y, z, t)."""
    n_volumes = len(confounds)
    n_voxels = maps_on_func.shape[0]
    baseline = 500.0 + 100.0 * rng.random(n_voxels)
    regions = rng.standard_normal((n_volumes, maps_on_func.shape[1])) * 20.0
    drivers = confounds[["csf", "white_matter", "trans_x", "rot_y"]].to_numpy()
    drivers = np.nan_to_num(drivers - drivers.mean(axis=0))
    drivers /= drivers.std(axis=0)
    patterns = rng.standard_normal((drivers.shape[1], n_voxels)) * 5.0
    data = (
        baseline
        + regions @ maps_on_func.T
        + drivers @ patterns
        + 3.0 * rng.standard_normal((n_volumes, n_voxels))
    )
    return data.T.reshape(*FUNC_SHAPE, n_volumes, order="F").astype(np.float32)


def _write_bold(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm", "sec")
    image.header["pixdim"][4] = T_R
    image.header.set_sform(affine, code=4)
    image.header.set_qform(affine, code=4)
    nib.save(image, path)
    sidecar = path.parent / (path.name[: -len(".nii.gz")] + ".json")
    sidecar.write_text(
        json.dumps({"RepetitionTime": T_R, "SkullStripped": False, "TaskName": "rest"})
    )


def make_fmriprep_tree(
    root: Path,
    *,
    seed: int = 0,
    extra_space: str | None = "T1w",
    n_volumes: int | None = None,
) -> FmriprepTree:
    """Write a fMRIPrep-like derivatives dataset under ``root``.

    Layout (space ``MNI152NLin2009cAsym``, ``res-2``, 30 volumes each unless
    ``n_volumes``)::

        root/fmriprep/dataset_description.json
        root/fmriprep/sub-01/ses-{1,2}/func/
            sub-01_ses-S_task-rest_run-R_space-..._res-2_desc-preproc_bold.nii.gz
            sub-01_ses-S_task-rest_run-R_space-..._res-2_desc-preproc_bold.json
            sub-01_ses-S_task-rest_run-R_desc-confounds_timeseries.{tsv,json}
        root/fmriprep/sub-02/func/
            sub-02_task-rest_space-..._res-2_desc-preproc_bold.nii.gz (+ .json)
            sub-02_task-rest_space-T1w_desc-preproc_bold.nii.gz (``extra_space``)
            sub-02_task-rest_desc-confounds_regressors.{tsv,json}
        root/atlas_maps.nii.gz, root/atlas_labels.csv, root/atlas_truth.npz

    Sources of the confounds: sub-01 ses-1 run-1 and ses-2 run-2 ``v21``; ses-1
    run-2 ``old``; ses-2 run-1 ``spiky`` (the old table with FD spikes at
    :data:`FD_SPIKES`, the last volume included); sub-02 ``old`` (older
    ``_regressors`` name).

    Parameters
    ----------
    root : Path
        An empty folder.
    seed : int
        Seed of the atlas and images (same seed, same bytes).
    extra_space : str or None
        Space of an extra sub-02 image (same data, to test the space filter).
    n_volumes : int, optional
        Lengthen every confounds table (and image) to this many volumes with
        :func:`extend_table`; default: the real 30-row tables, unchanged.

    Returns
    -------
    FmriprepTree
    """
    root = Path(root)
    tree = root / "fmriprep"
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "dataset_description.json").write_text(
        json.dumps(
            {
                "Name": "fMRIPrep - fMRI PREProcessing workflow",
                "BIDSVersion": "1.4.0",
                "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "fMRIPrep", "Version": "21.0.0"}],
            },
            indent=2,
        )
    )
    maps, labels, truth_path = (
        root / "atlas_maps.nii.gz",
        root / "atlas_labels.csv",
        root / "atlas_truth.npz",
    )
    synthetic.generate_atlas(
        maps,
        labels,
        truth_path,
        n_regions=N_REGIONS,
        seed=seed,
        shape=ATLAS_SHAPE,
        affine=ATLAS_AFFINE,
    )
    truth = synthetic.load_group_truth(truth_path)
    maps_on_func = synthetic.map_values(
        truth, synthetic.grid_coordinates(FUNC_SHAPE, FUNC_AFFINE)
    )
    rng = np.random.default_rng(seed)
    scans = []
    for entities, kind, source in LAYOUT:
        labels_of = dict(entities)
        folder = tree / f"sub-{labels_of['sub']}"
        if "ses" in labels_of:
            folder = folder / f"ses-{labels_of['ses']}"
        folder = folder / "func"
        folder.mkdir(parents=True, exist_ok=True)
        confounds = folder / f"{_name(entities)}_desc-confounds_{kind}.tsv"
        _write_confounds(source, confounds, n_volumes, rng)
        table = pd.read_csv(confounds, sep="\t")
        data = _bold_data(rng, maps_on_func, table)
        spaces = [(SPACE, "2")]
        if labels_of["sub"] == "02" and extra_space:
            spaces.append((extra_space, None))
        for space, res in spaces:
            full = [*entities, ("space", space)] + ([("res", res)] if res else [])
            bold = folder / f"{_name(full)}_desc-preproc_bold.nii.gz"
            _write_bold(bold, data, FUNC_AFFINE)
            scans.append(TreeScan(bold, confounds, source, _name(full)))
    scans.sort(key=lambda s: s.name)
    return FmriprepTree(root=tree, maps=maps, labels=labels, scans=scans)
