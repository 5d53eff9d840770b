"""Dataset development: nilearn's subject choice, reduced confounds, bad input.

The oracle of the subject order is nilearn 0.13.1's ``fetch_development_fmri``
itself, run offline: given a data_dir already holding the participants table and
(empty) files of every subject, it downloads nothing and returns its choice.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparseconn import fetch
from sparseconn.errors import InputError
from sparseconn.workflow.inputs import build_inputs
from tests.conftest import ROOT
from tests.development_mirror import confounds_table, participants_table
from tests.httpserver import Fault, Mirror


def nilearn_choices(groups: list[str], tmp_path: Path, counts) -> dict[int, list]:
    """nilearn's fetch_development_fmri(n_subjects=n) for each n of ``counts``."""
    from nilearn.datasets import fetch_development_fmri

    folder = tmp_path / fetch.DEVELOPMENT_FOLDER
    folder.mkdir(parents=True)
    participants_table(groups).to_csv(
        folder / "participants.tsv", sep="\t", index=False
    )
    for subject in fetch.development_index():
        (folder / fetch.DEVELOPMENT_FUNC_NAME.format(subject=subject)).touch()
        (folder / fetch.DEVELOPMENT_CONFOUNDS_NAME.format(subject=subject)).touch()
    choices = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in counts:
            dataset = fetch_development_fmri(
                n_subjects=n, data_dir=tmp_path, reduce_confounds=False, verbose=0
            )
            choices[n] = [
                Path(func).name.split("_")[0].removeprefix("sub-")
                for func in dataset.func
            ]
    return choices


LAYOUTS = {
    "children-then-adults": ["child"] * 122 + ["adult"] * 33,
    "mixed": list(
        np.random.default_rng(0).permutation(["child"] * 122 + ["adult"] * 33)
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_subjects_and_order_are_nilearns_for_every_n(layout, tmp_path):
    groups = LAYOUTS[layout]
    expected = nilearn_choices(groups, tmp_path, range(1, 156))
    participants = tmp_path / fetch.DEVELOPMENT_FOLDER / "participants.tsv"
    for n, theirs in expected.items():
        assert fetch.development_subjects(participants, n) == theirs, n


def test_first_subjects_adults_first(tmp_path):
    participants = tmp_path / "participants.tsv"
    participants_table().to_csv(participants, sep="\t", index=False)
    assert fetch.development_subjects(participants, 1) == ["pixar123"]
    assert fetch.development_subjects(participants, 2) == ["pixar123", "pixar001"]
    assert fetch.development_subjects(participants, 4) == [
        "pixar123",
        "pixar001",
        "pixar002",
        "pixar003",
    ]
    assert len(fetch.development_subjects(participants, 155)) == 155


@pytest.mark.parametrize("n_subjects", [0, 156])
def test_n_subjects_out_of_range(tmp_path, n_subjects):
    participants = tmp_path / "participants.tsv"
    participants_table().to_csv(participants, sep="\t", index=False)
    with pytest.raises(
        ValueError, match=r"n_subjects \d+ is out of range \(1 to 155\)"
    ):
        fetch.development_subjects(participants, n_subjects)


def test_participants_without_groups_names_the_file(tmp_path):
    participants = tmp_path / "participants.tsv"
    participants_table().drop(columns="Child_Adult").to_csv(
        participants, sep="\t", index=False
    )
    with pytest.raises(InputError) as error:
        fetch.development_subjects(participants, 4)
    assert str(error.value) == (
        f"{participants}: participants table has no Child_Adult column"
    )


def test_reduced_confounds_are_nilearns_columns(tmp_path):
    full = tmp_path / "full.tsv"
    motion = np.random.default_rng(0).standard_normal((20, 6))
    confounds_table(motion, seed=0).to_csv(full, sep="\t", index=False)
    reduced = fetch.reduce_development_confounds(full, tmp_path / "reduced.tsv")
    table = pd.read_csv(reduced, sep="\t")
    assert list(table.columns) == list(fetch.DEVELOPMENT_CONFOUND_COLUMNS)
    np.testing.assert_array_equal(table, pd.read_csv(full, sep="\t")[table.columns])


def test_confounds_without_a_kept_column_is_one_line(tmp_path):
    full = tmp_path / "full.tsv"
    motion = np.zeros((20, 6))
    confounds_table(motion, seed=0).drop(columns="csf").to_csv(
        full, sep="\t", index=False
    )
    with pytest.raises(InputError) as error:
        fetch.reduce_development_confounds(full, tmp_path / "reduced.tsv")
    assert str(error.value).startswith(f"{full}: no column 'csf' among the confounds")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "reduced.tsv").exists()


def test_a_corrupt_download_is_one_line_and_leaves_nothing(tmp_path):
    func = b"\x1f\x8b" + b"not a gzip stream" * 10
    outputs = {
        key: tmp_path / name
        for key, name in (
            ("func", "bold.nii.gz"),
            ("confounds", "confounds.tsv"),
            ("reduced_confounds", "reduced.tsv"),
        )
    }
    with Mirror({"download/a/": func, "download/b/": b"x\ty\n1\t2\n"}) as mirror:
        mirror.faults["download/a/"] += [Fault("corrupt", after=5)] * 3
        with pytest.raises(InputError) as error:
            fetch.fetch_development_subject(
                {
                    "func": mirror.url("download/a/"),
                    "confounds": mirror.url("download/b/"),
                },
                outputs,
                lock_file=tmp_path / "lock.json",
                attempts=2,
                backoff=0,
            )
    message = str(error.value)
    assert message.startswith(f"{mirror.url('download/a/')}: corrupt download")
    assert "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _config(tmp_path: Path, base: Path, n_subjects: int) -> dict:
    import yaml

    defaults = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return {
        **defaults,
        "dataset": "development",
        "n_subjects": n_subjects,
        "resources_dir": str(tmp_path / "resources"),
        "results_dir": str(tmp_path / "results"),
        "development": {"base_url": base.as_uri() + "/", "atlas_url": None},
    }


def test_inputs_follow_nilearns_order(tmp_path):
    base = tmp_path / "osf"
    (base / "yr3av").mkdir(parents=True)
    participants_table().to_csv(base / "yr3av" / "download", sep="\t", index=False)
    inputs = build_inputs(_config(tmp_path, base, 4), source="config", basedir=ROOT)
    assert inputs.group_units == ("pixar123", "pixar001", "pixar002", "pixar003")
    assert inputs.subjects == ("pixar001", "pixar002", "pixar003", "pixar123")
    assert inputs.plot_unit == "pixar123"
    assert inputs.file_confounds("pixar001").endswith(
        "development_fmri/development_fmri/"
        "sub-pixar001_task-pixar_desc-reducedConfounds_regressors.tsv"
    )
    urls = inputs.subject_downloads("pixar001")["urls"]
    assert urls == {
        "func": base.as_uri() + "/download/5c8ff37c2286e80019c3c102/",
        "confounds": base.as_uri() + "/download/5c8ff37da743a90018606df1/",
    }
    assert inputs.msdl_url.endswith("MSDL_rois.zip")  # config/development.yaml's


def test_inputs_n_subjects_beyond_the_table_names_the_config(tmp_path):
    base = tmp_path / "osf"
    (base / "yr3av").mkdir(parents=True)
    participants_table().head(10).to_csv(
        base / "yr3av" / "download", sep="\t", index=False
    )
    with pytest.raises(InputError) as error:
        build_inputs(_config(tmp_path, base, 11), source="config", basedir=ROOT)
    assert str(error.value).startswith("config: the development dataset's")
    assert "lists 10 subjects; n_subjects 11 is out of range (1 to 10)" in str(
        error.value
    )
