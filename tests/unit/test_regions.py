"""Atlases of either kind: specs, loading by kind, one read for several atlases."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from sparseconn import regions
from sparseconn.errors import InputError
from sparseconn.io import read_func_info
from sparseconn.labels import extract_label_signals, load_label_atlas
from sparseconn.regions import AtlasSpec
from sparseconn.signals import extract_map_signals
from sparseconn.steps.subject import run_extract_timeseries
from tests.helpers import count_reads, make_func, make_maps

AFFINE = np.diag([4.0, 4.0, 4.0, 1.0])


def _labels(path, values=(1, 2, 5), shape=(7, 8, 6), dtype=np.int16):
    image = np.zeros(shape, dtype=dtype)
    for index, value in enumerate(values):
        image[1 + 2 * index : 3 + 2 * index, 1:-1, 1:-1] = value
    nib.save(nib.Nifti1Image(image, AFFINE), path)
    return path


@pytest.fixture
def files(tmp_path, rng):
    maps = tmp_path / "maps.nii.gz"
    make_maps(maps, rng)
    return {
        "func": tmp_path / "func.nii.gz",
        "maps": maps,
        "labels": _labels(tmp_path / "dseg.nii.gz"),
        "data": make_func(tmp_path / "func.nii.gz", rng, shape=(9, 10, 8)),
    }


def test_spec_checks_and_round_trips():
    spec = AtlasSpec("A", "a.nii.gz", "a.tsv", "labels", "labels")
    assert AtlasSpec.from_param(spec.as_param()) == spec
    assert spec.files == ["a.nii.gz", "a.tsv"]
    with pytest.raises(ValueError, match="kind 'dseg'"):
        AtlasSpec("A", "a.nii.gz", kind="dseg")
    with pytest.raises(ValueError, match="resampling_target 'maps'"):
        AtlasSpec("A", "a.nii.gz", resampling_target="maps")


def test_kind_detected_or_forced(files, tmp_path):
    maps = regions.load(AtlasSpec("M", str(files["maps"])))
    labels = regions.load(AtlasSpec("L", str(files["labels"])))
    assert (maps.kind, labels.kind) == ("maps", "labels")
    assert labels.names == ["1", "2", "5"] and labels.resampling_target == "data"
    assert maps.resampling_target == "maps" and "least squares" in maps.method
    target = regions.load(
        AtlasSpec("L", str(files["labels"]), resampling_target="labels")
    )
    assert "func resampled to the labels grid" in target.method


@pytest.mark.parametrize(
    ("image", "kind", "target", "message"),
    [
        ("maps", "labels", None, "must be a 3D image"),
        ("labels", "maps", None, "must be a 4D image"),
        ("float", "labels", None, "non-integer values"),
        ("float", "auto", None, "non-integer values"),
        ("maps", "auto", "data", "resampling_target is for label atlases"),
    ],
)
def test_wrong_kind_is_one_error_naming_the_image(
    files, tmp_path, image, kind, target, message
):
    if image == "float":
        probabilities = np.random.default_rng(0).random((7, 8, 6)) * 0.9
        nib.save(nib.Nifti1Image(probabilities, AFFINE), tmp_path / "float.nii.gz")
        path = tmp_path / "float.nii.gz"
    else:
        path = files[image]
    with pytest.raises(InputError, match=message) as error:
        regions.load(AtlasSpec("X", str(path), kind=kind, resampling_target=target))
    assert str(path) in str(error.value)


def test_table_matching_no_label_is_an_error(files, tmp_path):
    table = tmp_path / "t.tsv"
    pd.DataFrame({"index": [7, 8], "name": ["x", "y"]}).to_csv(
        table, sep="\t", index=False
    )
    with pytest.raises(InputError, match="no 'index' of the table is a label"):
        regions.load(AtlasSpec("L", str(files["labels"]), str(table)))


def test_two_atlases_one_read_same_signals(files, monkeypatch):
    """Maps and labels from one decompression equal each extracted alone."""
    info = read_func_info(files["func"])
    loaded = [
        regions.load(AtlasSpec("M", str(files["maps"]))),
        regions.load(AtlasSpec("L", str(files["labels"]))),
        regions.load(AtlasSpec("T", str(files["labels"]), resampling_target="labels")),
    ]
    alone = [
        extract_map_signals(info, loaded[0].atlas),
        extract_label_signals(info, loaded[1].atlas, "data"),
        extract_label_signals(info, loaded[2].atlas, "labels"),
    ]
    reads = count_reads(monkeypatch)
    from sparseconn.signals import extract_signals

    together = extract_signals(info, regions.extractors_for(info, loaded))
    assert reads == [files["func"]]
    for one, other in zip(together, alone, strict=True):
        np.testing.assert_array_equal(one.signals, other.signals)
        np.testing.assert_array_equal(one.coverage, other.coverage)


def test_extraction_step_writes_every_atlas(files, tmp_path, monkeypatch):
    reads = count_reads(monkeypatch)
    specs = [AtlasSpec("M", str(files["maps"])), AtlasSpec("L", str(files["labels"]))]
    tsvs = [tmp_path / "m.tsv", tmp_path / "l.tsv"]
    jsons = [tmp_path / "m.json", tmp_path / "l.json"]
    run_extract_timeseries(
        files["func"], specs, [], tsvs, jsons, tmp_path / "hv.tsv", subject="01"
    )
    assert reads == [files["func"]]
    maps_table, labels_table = (pd.read_csv(path, sep="\t") for path in tsvs)
    assert list(labels_table.columns) == ["1", "2", "5"]
    assert maps_table.shape == (40, 4) and labels_table.shape == (40, 3)
    sidecars = [json.loads(path.read_text()) for path in jsons]
    assert [s["Atlas"] for s in sidecars] == ["M", "L"]
    assert "mean of each region" in sidecars[1]["Extraction"]["Method"]
    # each atlas alone gives the same bytes
    alone = tmp_path / "alone"
    alone.mkdir()
    run_extract_timeseries(
        files["func"],
        specs[1:],
        [],
        [alone / "l.tsv"],
        [alone / "l.json"],
        alone / "hv.tsv",
        subject="01",
    )
    assert (alone / "l.tsv").read_bytes() == tsvs[1].read_bytes()


def test_step_with_atlas_outside_the_field_of_view_writes_nothing(files, tmp_path):
    far = tmp_path / "far.nii.gz"
    image = np.asarray(nib.load(files["labels"]).dataobj)
    far_affine = AFFINE.copy()
    far_affine[:3, 3] = 500.0  # half a metre away from the func
    nib.save(nib.Nifti1Image(image, far_affine), far)
    specs = [AtlasSpec("M", str(files["maps"])), AtlasSpec("F", str(far))]
    with pytest.raises(InputError, match="does not overlap any region"):
        run_extract_timeseries(
            files["func"],
            specs,
            [],
            [tmp_path / "m.tsv", tmp_path / "f.tsv"],
            [tmp_path / "m.json", tmp_path / "f.json"],
            tmp_path / "hv.tsv",
            subject="01",
        )
    assert not list(tmp_path.glob("*.tsv")) and not list(tmp_path.glob("*.json"))


def test_label_centres_are_world_centres_of_mass(tmp_path):
    atlas = load_label_atlas(_labels(tmp_path / "d.nii.gz", values=(3, 9)))
    centres = regions.label_centres(atlas)
    # label 3: x voxels 1-2, y 1-6, z 1-4 -> centre (1.5, 3.5, 2.5) voxels, 4 mm
    np.testing.assert_allclose(centres[0], [6.0, 14.0, 10.0])
    np.testing.assert_allclose(centres[1], [14.0, 14.0, 10.0])
    coords, mask, affine = regions.geometry(
        regions.LoadedAtlas(AtlasSpec("L", "d"), "labels", atlas)
    )
    np.testing.assert_array_equal(coords, centres)
    assert mask.sum() == 2 * 2 * 6 * 4 and np.array_equal(affine, AFFINE)


def test_scan_region_table_reasons(files):
    loaded = regions.load(AtlasSpec("L", str(files["labels"])))
    raw = np.random.default_rng(0).standard_normal((20, 3))
    raw[:, 2] = 4.0  # constant over the kept volumes
    table = regions.scan_region_table(loaded, np.array([1.0, 0.3, 0.9]), raw, 0.5)
    assert list(table.columns) == regions.SCAN_REGION_COLUMNS
    assert list(table["index"]) == [1, 2, 5]
    assert list(table["usable"]) == [True, False, False]
    assert table["reason"].tolist() == [
        "",
        "30% in the field of view, below min_region_coverage 50%",
        "constant signal",
    ]
    outside = regions.scan_region_table(loaded, np.array([0.0, 1, 1]), raw, 0.0)
    assert outside["reason"].iloc[0] == "outside the field of view"
    assert list(outside["usable"]) == [False, True, False]


def test_group_region_table_keeps_regions_usable_everywhere(files):
    loaded = regions.load(AtlasSpec("L", str(files["labels"])))
    raw = np.random.default_rng(0).standard_normal((20, 3))
    good = regions.scan_region_table(loaded, np.ones(3), raw, 0.5)
    cut = regions.scan_region_table(loaded, np.array([1.0, 0.0, 0.6]), raw, 0.5)
    table = regions.group_region_table([good, cut, good], ["sub-a", "sub-b", "sub-c"])
    assert list(table.columns) == regions.GROUP_REGION_COLUMNS
    assert list(table["kept"]) == [True, False, True]
    assert table["reason"].tolist() == ["", "sub-b: outside the field of view", ""]
    assert table["min_coverage"].tolist() == [1.0, 0.0, 0.6]
    other = good.assign(name=["x", "y", "z"])
    with pytest.raises(ValueError, match="sub-b: other regions than sub-a"):
        regions.group_region_table([good, other], ["sub-a", "sub-b"])


def test_group_time_series_read_on_the_kept_regions(tmp_path):
    from sparseconn.io import read_unit_timeseries, write_tsv

    series = tmp_path / "ts.tsv"
    frame = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["a", "b", "c"])
    write_tsv(frame, series)
    table = tmp_path / "regions.tsv"
    write_tsv(
        pd.DataFrame(
            {
                "index": [1, 2, 3],
                "name": ["a", "b", "c"],
                "kept": [True, False, True],
                "min_coverage": [1.0, 0.0, 1.0],
                "reason": ["", "sub-x: outside the field of view", ""],
            }
        ),
        table,
    )
    (signals,), names = read_unit_timeseries([series], table)
    assert names == ["a", "c"]
    np.testing.assert_array_equal(signals, frame[["a", "c"]].to_numpy())
    write_tsv(frame.rename(columns={"c": "d"}), series)
    with pytest.raises(InputError, match="other regions than the time series"):
        read_unit_timeseries([series], table)


def test_table_and_image_disagreements_reach_the_sidecar(files, tmp_path):
    table = tmp_path / "t.tsv"
    pd.DataFrame({"index": [1, 2, 3], "name": ["a", "b", "c"]}).to_csv(
        table, sep="\t", index=False
    )
    spec = AtlasSpec("L", str(files["labels"]), str(table))
    out_tsv, out_json = tmp_path / "l.tsv", tmp_path / "l.json"
    run_extract_timeseries(
        files["func"],
        [spec],
        [],
        [out_tsv],
        [out_json],
        tmp_path / "hv.tsv",
        subject="01",
    )
    assert list(pd.read_csv(out_tsv, sep="\t").columns) == ["a", "b", "5"]
    warnings = json.loads(out_json.read_text())["Warnings"]
    assert "atlas table t.tsv: labels [3] are not in the image: no region" in warnings
    assert (
        "atlas table t.tsv: image labels [5] are not in the table: named after "
        "their value" in warnings
    )
