"""Atlases by name from a local TemplateFlow folder (sparseconn.templateflow)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sparseconn.atlas import load_atlas
from sparseconn.errors import InputError
from sparseconn.labels import load_label_atlas
from sparseconn.templateflow import find_templateflow_atlas, template_matches_space

TEMPLATE = "MNI152NLin2009cAsym"
SCHAEFER_TABLE = (
    "index\tname\tnetwork\tcolor\n"
    "1\t17Networks_LH_VisCent_1\tVisCent\t#781286\n"
    "2\t17Networks_LH_DefaultA_1\tDefaultA\t#ffff00\n"
    "3\t17Networks_RH_DefaultA_1\tDefaultA\t#ffff00\n"
)
DIFUMO_TABLE = "index\tname\tnetwork\n1\tCalcarine\tVis\n2\tCingulate\tDMN\n"


def _dseg(path: Path, shift: int = 0) -> Path:
    """A 3-region parcellation (labels 1, 2, 3 in slabs along x)."""
    image = np.zeros((6, 5, 4), dtype=np.int16)
    image[0:2, 1:4, 1:3] = 1
    image[2:4, 1:4, 1:3] = 2
    image[4:6, 1:4, 1:3] = 3
    nib.save(nib.Nifti1Image(np.roll(image, shift, axis=1), np.eye(4)), path)
    return path


def _probseg(path: Path) -> Path:
    """Two overlapping probabilistic maps."""
    maps = np.zeros((6, 5, 4, 2), dtype=np.float32)
    maps[0:4, 1:4, 1:3, 0] = 0.8
    maps[2:6, 1:4, 1:3, 1] = 0.6
    nib.save(nib.Nifti1Image(maps, np.eye(4)), path)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A TemplateFlow home: Schaefer (dseg, res 01/02, two descs), DiFuMo, HOSPA."""
    folder = tmp_path / "templateflow" / f"tpl-{TEMPLATE}"
    folder.mkdir(parents=True)
    tpl = f"tpl-{TEMPLATE}"
    for desc in ("400Parcels17Networks", "100Parcels7Networks"):
        for res in ("01", "02"):
            _dseg(
                folder / f"{tpl}_res-{res}_atlas-Schaefer2018_desc-{desc}_dseg.nii.gz"
            )
        table = folder / f"{tpl}_atlas-Schaefer2018_desc-{desc}_dseg.tsv"
        table.write_text(SCHAEFER_TABLE)
    _probseg(folder / f"{tpl}_res-02_atlas-DiFuMo_desc-64dimensions_probseg.nii.gz")
    (folder / f"{tpl}_atlas-DiFuMo_desc-64dimensions_probseg.tsv").write_text(
        DIFUMO_TABLE
    )
    # HOSPA: thresholded parcellations and the maps share one table without desc.
    for desc in ("th25", "th50"):
        _dseg(folder / f"{tpl}_res-01_atlas-HOSPA_desc-{desc}_dseg.nii.gz")
    _probseg(folder / f"{tpl}_res-01_atlas-HOSPA_probseg.nii.gz")
    (folder / f"{tpl}_atlas-HOSPA_dseg.tsv").write_text(
        "index\tname\n1\tLeft Thalamus\n2\tRight Thalamus\n"
    )
    # Not atlases: a template image, a tissue probseg, a surface atlas.
    (folder / f"{tpl}_res-01_T1w.nii.gz").write_bytes(b"x")
    (folder / f"{tpl}_res-01_label-CSF_probseg.nii.gz").write_bytes(b"x")
    (folder / f"{tpl}_hemi-L_atlas-Schaefer2018_dseg.label.gii").write_bytes(b"x")
    (tmp_path / "templateflow" / "tpl-MNI152NLin6Asym").mkdir()
    return tmp_path / "templateflow"


def _folder(home: Path) -> Path:
    return home / f"tpl-{TEMPLATE}"


# ------------------------------------------------------------------ finding


def test_dseg_with_table_loads_as_label_atlas(home):
    found = find_templateflow_atlas(
        home, TEMPLATE, "Schaefer2018", res=2, desc="400Parcels17Networks"
    )
    folder = _folder(home)
    stem = f"tpl-{TEMPLATE}_res-02_atlas-Schaefer2018_desc-400Parcels17Networks"
    assert found.image_path == folder / f"{stem}_dseg.nii.gz"
    table = f"tpl-{TEMPLATE}_atlas-Schaefer2018_desc-400Parcels17Networks_dseg.tsv"
    assert found.table_path == folder / table
    assert found.kind == "labels"
    assert found.entities == {
        "tpl": TEMPLATE,
        "res": "02",
        "atlas": "Schaefer2018",
        "desc": "400Parcels17Networks",
    }
    assert (found.template, found.atlas) == (TEMPLATE, "Schaefer2018")
    atlas = load_label_atlas(found.image_path, found.table_path)
    assert atlas.names == [
        "17Networks_LH_VisCent_1",
        "17Networks_LH_DefaultA_1",
        "17Networks_RH_DefaultA_1",
    ]
    assert atlas.labels["network"].tolist() == ["VisCent", "DefaultA", "DefaultA"]


def test_probseg_loads_as_maps(home):
    found = find_templateflow_atlas(home, TEMPLATE, "DiFuMo")
    assert found.kind == "maps"
    assert found.image_path.name.endswith("desc-64dimensions_probseg.nii.gz")
    assert found.table_path.name.endswith("desc-64dimensions_probseg.tsv")
    atlas = load_atlas(found.image_path, found.table_path)
    assert atlas.n_regions == 2
    assert atlas.names == ["Calcarine", "Cingulate"]
    assert atlas.labels["network"].tolist() == ["Vis", "DMN"]


def test_probseg_prefers_its_own_table_and_falls_back_to_dseg_tsv(home):
    folder = _folder(home)
    tpl = f"tpl-{TEMPLATE}"
    (folder / f"{tpl}_atlas-DiFuMo_desc-64dimensions_dseg.tsv").write_text(
        "index\tname\n1\tA\n2\tB\n"
    )
    found = find_templateflow_atlas(home, TEMPLATE, "DiFuMo")
    assert found.table_path.name.endswith("_probseg.tsv")
    (folder / f"{tpl}_atlas-DiFuMo_desc-64dimensions_probseg.tsv").unlink()
    found = find_templateflow_atlas(home, TEMPLATE, "DiFuMo")
    assert found.table_path.name == f"{tpl}_atlas-DiFuMo_desc-64dimensions_dseg.tsv"
    assert load_atlas(found.image_path, found.table_path).names == ["A", "B"]


def test_table_shared_across_descriptions_and_kinds(home):
    labels = find_templateflow_atlas(home, TEMPLATE, "HOSPA", desc="th25")
    maps = find_templateflow_atlas(home, TEMPLATE, "HOSPA", kind="maps")
    shared = _folder(home) / f"tpl-{TEMPLATE}_atlas-HOSPA_dseg.tsv"
    assert labels.kind == "labels" and maps.kind == "maps"
    assert labels.table_path == maps.table_path == shared
    assert load_label_atlas(labels.image_path, labels.table_path).names == [
        "Left Thalamus",
        "Right Thalamus",
        "3",
    ]
    assert load_atlas(maps.image_path, maps.table_path).names == [
        "Left Thalamus",
        "Right Thalamus",
    ]


def test_more_specific_table_wins(home):
    folder = _folder(home)
    tpl = f"tpl-{TEMPLATE}"
    specific = folder / f"{tpl}_res-01_atlas-HOSPA_desc-th50_dseg.tsv"
    specific.write_text("index\tname\n1\ta\n2\tb\n3\tc\n")
    found = find_templateflow_atlas(home, TEMPLATE, "HOSPA", desc="th50", res="01")
    assert found.table_path == specific
    other = find_templateflow_atlas(home, TEMPLATE, "HOSPA", desc="th25")
    assert other.table_path == folder / f"{tpl}_atlas-HOSPA_dseg.tsv"


def test_no_table(home):
    folder = _folder(home)
    (folder / f"tpl-{TEMPLATE}_atlas-HOSPA_dseg.tsv").unlink()
    found = find_templateflow_atlas(home, TEMPLATE, "HOSPA", desc="th50")
    assert found.table_path is None
    assert load_label_atlas(found.image_path, found.table_path).names == [
        "1",
        "2",
        "3",
    ]


def test_dseg_does_not_take_a_probseg_table(home):
    folder = _folder(home)
    tpl = f"tpl-{TEMPLATE}"
    (folder / f"{tpl}_atlas-HOSPA_dseg.tsv").unlink()
    (folder / f"{tpl}_atlas-HOSPA_probseg.tsv").write_text("index\tname\n1\ta\n")
    assert (
        find_templateflow_atlas(home, TEMPLATE, "HOSPA", desc="th25").table_path is None
    )
    maps = find_templateflow_atlas(home, TEMPLATE, "HOSPA", kind="maps")
    assert maps.table_path == folder / f"{tpl}_atlas-HOSPA_probseg.tsv"


@pytest.mark.parametrize("res", [2, "2", "02", "res-02", "res-2"])
def test_res_formats(home, res):
    found = find_templateflow_atlas(
        home, TEMPLATE, "Schaefer2018", res=res, desc="100Parcels7Networks"
    )
    assert found.entities["res"] == "02"


@pytest.mark.parametrize("res", [1, "1", "01"])
def test_res_selects_the_resolution(home, res):
    found = find_templateflow_atlas(
        home, TEMPLATE, "Schaefer2018", res=res, desc="desc-100Parcels7Networks"
    )
    assert "_res-01_" in found.image_path.name
    assert "desc-100Parcels7Networks" in found.image_path.name


# ------------------------------------------------------------------ errors


def test_ambiguous_resolution_names_res(home):
    with pytest.raises(InputError) as caught:
        find_templateflow_atlas(
            home, TEMPLATE, "Schaefer2018", desc="400Parcels17Networks"
        )
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{_folder(home)}: ")
    assert "2 images match atlas-Schaefer2018 desc-400Parcels17Networks" in message
    assert "res-{01,02}" in message
    assert message.endswith("give res")


def test_ambiguous_res_and_desc(home):
    with pytest.raises(InputError, match=r"4 images match .* give desc and res$"):
        find_templateflow_atlas(home, TEMPLATE, "Schaefer2018")


def test_ambiguous_kind(home):
    (
        _folder(home) / f"tpl-{TEMPLATE}_res-01_atlas-HOSPA_desc-th25_dseg.nii.gz"
    ).unlink()
    (
        _folder(home) / f"tpl-{TEMPLATE}_res-01_atlas-HOSPA_desc-th50_dseg.nii.gz"
    ).unlink()
    _dseg(_folder(home) / f"tpl-{TEMPLATE}_res-01_atlas-HOSPA_dseg.nii.gz")
    with pytest.raises(InputError, match=r"\{dseg,probseg\}\): give kind"):
        find_templateflow_atlas(home, TEMPLATE, "HOSPA")
    assert find_templateflow_atlas(home, TEMPLATE, "HOSPA", kind="labels").kind == (
        "labels"
    )


def test_unknown_description_lists_present_entities(home):
    with pytest.raises(InputError) as caught:
        find_templateflow_atlas(
            home, TEMPLATE, "Schaefer2018", desc="200Parcels7Networks", res=2
        )
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        f"{_folder(home)}: no atlas-Schaefer2018 res-2 desc-200Parcels7Networks; "
        "present: atlas-Schaefer2018 desc-{100Parcels7Networks,400Parcels17Networks} "
        "res-{01,02} dseg"
    )


def test_unknown_resolution_lists_present_entities(home):
    with pytest.raises(InputError, match=r"no atlas-DiFuMo res-1; present: "):
        find_templateflow_atlas(home, TEMPLATE, "DiFuMo", res=1)


def test_unknown_atlas_lists_present_atlases(home):
    with pytest.raises(InputError) as caught:
        find_templateflow_atlas(home, TEMPLATE, "Gordon2016")
    message = str(caught.value)
    assert message.startswith(f"{_folder(home)}: no atlas-Gordon2016; present: ")
    assert "atlas-DiFuMo desc-64dimensions res-02 probseg" in message
    assert "atlas-HOSPA desc-{none,th25,th50} res-01 {dseg,probseg}" in message
    assert "atlas-Schaefer2018 desc-" in message
    assert "label-CSF" not in message and "T1w" not in message


def test_folder_without_atlases(home):
    with pytest.raises(
        InputError, match=r"tpl-MNI152NLin6Asym: no atlas-X; present: no atlas image"
    ):
        find_templateflow_atlas(home, "MNI152NLin6Asym", "X")


def test_missing_home(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError) as caught:
        find_templateflow_atlas(missing, TEMPLATE, "Schaefer2018")
    assert str(caught.value) == f"{missing}: TemplateFlow home folder not found"


def test_missing_template_folder_lists_templates(home):
    with pytest.raises(InputError) as caught:
        find_templateflow_atlas(home, "MNI152NLin2009cSym", "Schaefer2018")
    assert str(caught.value) == (
        f"{home / 'tpl-MNI152NLin2009cSym'}: template MNI152NLin2009cSym not found "
        "in the TemplateFlow home; present: tpl-MNI152NLin2009cAsym, "
        "tpl-MNI152NLin6Asym"
    )


def test_placeholder_not_downloaded(home):
    # TemplateFlow's skeleton holds empty files until they are fetched.
    image = (
        _folder(home)
        / f"tpl-{TEMPLATE}_res-02_atlas-DiFuMo_desc-64dimensions_probseg.nii.gz"
    )
    image.write_bytes(b"")
    with pytest.raises(
        InputError, match=r"probseg\.nii\.gz: empty file: a TemplateFlow placeholder"
    ):
        find_templateflow_atlas(home, TEMPLATE, "DiFuMo")


def test_broken_link_not_downloaded(home):
    image = (
        _folder(home)
        / f"tpl-{TEMPLATE}_res-02_atlas-DiFuMo_desc-64dimensions_probseg.nii.gz"
    )
    image.unlink()
    image.symlink_to(home / "annex" / "missing")
    with pytest.raises(InputError, match=r"broken link"):
        find_templateflow_atlas(home, TEMPLATE, "DiFuMo")


def test_bad_kind(home):
    with pytest.raises(
        InputError, match=r"atlas kind 'dseg' is not 'labels' or 'maps'"
    ):
        find_templateflow_atlas(home, TEMPLATE, "DiFuMo", kind="dseg")


# ------------------------------------------------------------------ space


@pytest.mark.parametrize(
    ("template", "space", "expected"),
    [
        ("MNI152NLin2009cAsym", "MNI152NLin2009cAsym", True),
        ("MNI152NLin6Asym", "MNI152NLin6Asym", True),
        ("MNI152NLin2009cAsym", "MNI152NLin2009cSym", False),
        ("MNI152NLin2009cAsym", "MNI152NLin6Asym", False),
        ("MNI152NLin6Asym", "MNI152Lin", False),
        ("MNI152NLin2009cAsym", "T1w", False),
        ("MNI152NLin2009cAsym", "mni152nlin2009casym", False),
        ("tpl-MNI152NLin6Asym", "MNI152NLin6Asym", True),
    ],
)
def test_template_matches_space(template, space, expected):
    assert template_matches_space(template, space) is expected
