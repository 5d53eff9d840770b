"""A tiny mirror of the development dataset's hosts (OSF and MSDL), synthetic.

Served by :class:`tests.httpserver.Mirror` under the paths nilearn 0.13.1's
``fetch_development_fmri`` asks OSF for: the participants table at
``yr3av/download`` (nilearn's columns, the 155 participant ids, children
``pixar001``-``pixar122`` and adults ``pixar123``-``pixar155``), each selected
subject's image and fMRIPrep confounds table at ``download/<key>/`` with the
keys of nilearn's index, and the MSDL zip at its host's path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sparseconn import fetch
from tests.httpserver import MSDL_PATH, func_grid_affine, msdl_atlas_zip

#: fMRIPrep confounds the reduced table leaves out (some start with n/a).
OTHER_CONFOUNDS = ("global_signal", "std_dvars", "dvars", "cosine00", "t_comp_cor_00")


def participants_table(groups: list[str] | None = None) -> pd.DataFrame:
    """nilearn's participants table: 155 ids; groups children then adults by default."""
    ids = sorted(fetch.development_index())
    if groups is None:
        groups = ["child"] * 122 + ["adult"] * 33
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "participant_id": [f"sub-{subject}" for subject in ids],
            "Age": np.round(rng.uniform(3, 39, len(ids)), 2),
            "AgeGroup": ["Adult" if g == "adult" else "5yo" for g in groups],
            "Child_Adult": groups,
            "Gender": rng.choice(["M", "F"], len(ids)),
            "Handedness": "R",
        }
    )


def confounds_table(motion: np.ndarray, seed: int) -> pd.DataFrame:
    """An fMRIPrep confounds table: the 15 columns nilearn keeps, and others."""
    rng = np.random.default_rng(seed)
    n_volumes = motion.shape[0]
    smooth = np.cumsum(rng.standard_normal((n_volumes, 16)), axis=0) / 10
    columns: dict[str, np.ndarray] = {}
    names = fetch.DEVELOPMENT_CONFOUND_COLUMNS
    for position, name in enumerate(names):
        columns[name] = motion[:, position] if position < 6 else smooth[:, position]
    columns["framewise_displacement"] = np.abs(columns["framewise_displacement"])
    for position, name in enumerate(OTHER_CONFOUNDS):
        columns[name] = smooth[:, 15 - position % 2] * (position + 1)
    table = pd.DataFrame(columns)
    ordered = [*OTHER_CONFOUNDS[:2], *reversed(names), *OTHER_CONFOUNDS[2:]]
    table = table[ordered].astype(object)
    table.loc[0, "std_dvars"] = "n/a"
    table.loc[0, "dvars"] = "n/a"
    return table


def development_mirror_files(
    folder: Path, n_subjects: int = 4, n_volumes: int = 60, n_regions: int = 6
) -> dict[str, bytes]:
    """The mirror's files (path below the root -> bytes) for ``n_subjects``.

    Only the subjects nilearn's fetcher picks for ``n_subjects`` have files.
    Images: 8 mm stand-ins for the 4 mm MNI ones, TR 2 s in the header.
    """
    from sparseconn.synthetic import generate_subject

    folder.mkdir(parents=True, exist_ok=True)
    func_affine = func_grid_affine(8.0)
    msdl_zip, truth = msdl_atlas_zip(folder, n_regions)
    files = {MSDL_PATH: msdl_zip}
    participants = folder / "participants.tsv"
    participants_table().to_csv(participants, sep="\t", index=False)
    files[fetch.DEVELOPMENT_PARTICIPANTS_PATH] = participants.read_bytes()
    index = fetch.development_index()
    for position, subject in enumerate(
        fetch.development_subjects(participants, n_subjects)
    ):
        func, motion_file = folder / f"{subject}.nii.gz", folder / f"{subject}.tsv"
        generate_subject(
            func,
            motion_file,
            folder / f"{subject}_truth.npz",
            atlas_truth_path=truth,
            subject_index=position,
            subject=subject,
            n_volumes=n_volumes,
            t_r=2.0,
            shape=(23, 27, 23),
            affine=func_affine,
        )
        motion = pd.read_csv(motion_file, sep="\t").to_numpy()
        confounds = confounds_table(motion, seed=position)
        confounds_key, bold_key = index[subject]
        files[fetch.development_file_path(bold_key)] = func.read_bytes()
        files[fetch.development_file_path(confounds_key)] = confounds.to_csv(
            sep="\t", index=False
        ).encode()
    return files
