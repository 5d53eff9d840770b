"""Group QC (issue 19): framewise displacement, QC-FC, the scans' table,
participants.tsv and the methods paragraph generated from the run's settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from sparseconn.configuration import changed_settings, schema_defaults
from sparseconn.motion import (
    benjamini_hochberg,
    edge_correlations,
    framewise_displacement,
    mean_framewise_displacement,
    qc_fc,
    qc_fc_streamed,
)
from sparseconn.steps.describe import (
    group_qc_html,
    methods_text,
    run_participants,
    run_qcfc,
    run_scan_qc,
)
from sparseconn.workflow.inputs import build_inputs
from sparseconn.workflow.methods import methods_settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]


# ---------------------------------------------------------- framewise displacement


def test_framewise_displacement_is_power_2012():
    # volume 1 moves 0.1 mm in x and 0.002 rad about z: 0.1 + 50 * 0.002 = 0.2 mm;
    # volume 2 moves back in x and turns 0.001 rad about x: 0.1 + 0.05 = 0.15 mm
    table = pd.DataFrame(
        [
            [0.0, 0, 0, 0.0, 0, 0.0],
            [0.1, 0, 0, 0.0, 0, 0.002],
            [0.0, 0, 0, 0.001, 0, 0.002],
        ],
        columns=MOTION,
    )
    np.testing.assert_allclose(framewise_displacement(table), [0.0, 0.2, 0.15])
    assert mean_framewise_displacement([table]) == pytest.approx(0.175)


def test_fmriprep_framewise_displacement_column_is_used_as_is():
    table = pd.DataFrame(
        {"framewise_displacement": [np.nan, 0.3, 0.1], **{c: [0.0] * 3 for c in MOTION}}
    )
    np.testing.assert_allclose(framewise_displacement(table), [0.0, 0.3, 0.1])
    assert mean_framewise_displacement([table]) == pytest.approx(0.2)


def test_no_motion_columns_no_framewise_displacement():
    table = pd.DataFrame({"trans_x": [0.0, 1.0], "csf": [1.0, 2.0]})
    assert framewise_displacement(table) is None
    assert mean_framewise_displacement([table]) is None


# ----------------------------------------------------------------------- QC-FC


def test_edge_correlations_are_the_upper_triangle(rng):
    signals = rng.standard_normal((50, 4))
    full = np.corrcoef(signals, rowvar=False)
    np.testing.assert_allclose(edge_correlations(signals), full[np.triu_indices(4, 1)])


def test_qc_fc_is_pearson_with_its_p_value_and_fdr(rng):
    edges = rng.standard_normal((12, 30))
    fd = rng.uniform(0.05, 0.4, size=12)
    edges[:, 0] += 40 * fd  # one edge driven by motion
    result = qc_fc(edges, fd)
    for k in range(edges.shape[1]):
        r, p = stats.pearsonr(edges[:, k], fd)
        assert result.r[k] == pytest.approx(r, abs=1e-12)
        assert result.p[k] == pytest.approx(p, rel=1e-9)
    np.testing.assert_allclose(result.q, stats.false_discovery_control(result.p))
    assert result.p[0] < 0.05
    assert result.median_abs_r == pytest.approx(np.median(np.abs(result.r)))
    assert result.fraction_significant == pytest.approx(np.mean(result.p < 0.05))


def test_qc_fc_one_subject_at_a_time_is_the_same(rng):
    edges = rng.uniform(-1, 1, size=(25, 40))
    fd = rng.uniform(0.05, 0.4, size=25)
    edges[:, 3] = 0.4  # constant across subjects: no correlation
    whole, streamed = qc_fc(edges, fd), qc_fc_streamed(iter(edges), fd)
    np.testing.assert_allclose(streamed.r, whole.r, atol=1e-12)
    np.testing.assert_allclose(streamed.p, whole.p, rtol=1e-9, atol=1e-14)
    assert (whole.r[3], whole.p[3]) == (0.0, 1.0)
    assert (streamed.r[3], streamed.p[3]) == (0.0, 1.0)


def test_benjamini_hochberg_of_nothing_and_of_ties():
    assert benjamini_hochberg(np.array([])).size == 0
    np.testing.assert_allclose(benjamini_hochberg(np.array([0.01, 0.01])), [0.01] * 2)


def test_qc_fc_needs_three_subjects_whose_motion_differs():
    with pytest.raises(ValueError, match="3 or more"):
        qc_fc(np.zeros((2, 3)), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="differ"):
        qc_fc(np.ones((4, 3)), np.full(4, 0.2))


def _series(folder: Path, name: str, signals: np.ndarray, fd: float | None) -> tuple:
    tsv = folder / f"{name}_timeseries.tsv"
    pd.DataFrame(signals, columns=["A", "B", "C"]).to_csv(tsv, sep="\t", index=False)
    sidecar = {"NumberOfVolumes": len(signals)}
    if fd is not None:
        sidecar["MeanFramewiseDisplacement"] = fd
    path = folder / f"{name}_timeseries.json"
    path.write_text(json.dumps(sidecar))
    return str(tsv), str(path)


def _regions(folder: Path) -> Path:
    path = folder / "regions.tsv"
    pd.DataFrame(
        {
            "index": [1, 2, 3],
            "name": ["A", "B", "C"],
            "kept": [True] * 3,
            "min_coverage": [1.0] * 3,
            "reason": [""] * 3,
        }
    ).to_csv(path, sep="\t", index=False)
    return path


def _run_qcfc(tmp_path, files):
    """run_qcfc on four subjects' (time series, sidecar) files; its outputs."""
    out_tsv, out_json = tmp_path / "qcfc.tsv", tmp_path / "qcfc.json"
    run_qcfc(
        [f[0] for f in files],
        [f[1] for f in files],
        _regions(tmp_path),
        out_tsv,
        out_json,
        units=["01", "02", "03", "04"],
    )
    return out_tsv, out_json


def test_run_qcfc_writes_every_edge_and_the_summary(tmp_path, rng):
    files = [
        _series(tmp_path, f"sub-0{i}", rng.standard_normal((40, 3)), 0.1 * i)
        for i in range(1, 5)
    ]
    out_tsv, out_json = _run_qcfc(tmp_path, files)
    table = pd.read_csv(out_tsv, sep="\t")
    assert list(zip(table["region_1"], table["region_2"], strict=True)) == [
        ("A", "B"),
        ("A", "C"),
        ("B", "C"),
    ]
    summary = json.loads(out_json.read_text())
    assert summary["Computed"] is True
    assert summary["MedianAbsoluteR"] == pytest.approx(
        np.median(np.abs(table["r"])), abs=1e-6
    )
    assert summary["MeanFramewiseDisplacement"]["03"] == pytest.approx(0.3)


def test_run_qcfc_says_why_it_is_not_computed(tmp_path, rng):
    files = [
        _series(tmp_path, f"sub-0{i}", rng.standard_normal((40, 3)), None)
        for i in range(1, 5)
    ]
    out_tsv, out_json = _run_qcfc(tmp_path, files)
    assert pd.read_csv(out_tsv, sep="\t").empty
    summary = json.loads(out_json.read_text())
    assert summary["Computed"] is False
    assert "motion columns" in summary["Reason"]


# ------------------------------------------------------- scans' table, participants


def test_scan_qc_has_motion_censoring_and_lost_degrees_of_freedom(tmp_path):
    sidecar = {
        "NumberOfVolumes": 100,
        "NumberOfVolumesKept": 90,
        "MeanFramewiseDisplacement": 0.12,
        "DegreesOfFreedom": {
            "Volumes": 90,
            "Confounds": 11,
            "Filter": 4,
            "Detrending": 2,
            "Remaining": 73,
        },
    }
    path = tmp_path / "sub-01.json"
    path.write_text(json.dumps(sidecar))
    out = tmp_path / "qc.tsv"
    run_scan_qc([path], ["sub-01"], {}, out)
    row = pd.read_csv(out, sep="\t").iloc[0]
    assert row["mean_fd"] == pytest.approx(0.12)
    assert row["volumes_censored"] == 10
    assert (row["dof_lost_confounds"], row["dof_lost_filter"]) == (11, 4)
    assert row["dof_lost_detrending"] == 2
    assert row["degrees_of_freedom"] == 73


def test_participants_lists_who_entered_the_group_stage_and_why_not(tmp_path):
    tables = []
    for atlas, sub02_run2 in (("A", True), ("B", False)):
        path = tmp_path / f"atlas-{atlas}_qc.tsv"
        pd.DataFrame(
            {
                "scan": [
                    "sub-01",
                    "sub-02_task-rest_run-1",
                    "sub-02_task-rest_run-2",
                ],
                "included": [False, True, sub02_run2],
                "reason": [
                    "excluded in the subjects sheet",
                    "",
                    "" if sub02_run2 else "12 of 100 volumes kept",
                ],
            }
        ).to_csv(path, sep="\t", index=False)
        tables.append(path)
    out_tsv, out_json = tmp_path / "participants.tsv", tmp_path / "participants.json"
    run_participants(tables, out_tsv, out_json)
    table = pd.read_csv(out_tsv, sep="\t", keep_default_na=False)
    assert table["participant_id"].tolist() == ["sub-01", "sub-02"]
    assert table["runs"].tolist() == [1, 2]
    assert table["runs_in_group"].tolist() == [0, 1]
    assert table["in_group_stage"].tolist() == [False, True]
    assert table["reason"].tolist() == [
        "excluded in the subjects sheet",
        "sub-02_task-rest_run-2: 12 of 100 volumes kept",
    ]
    described = json.loads(out_json.read_text())
    assert set(described) == set(table.columns)


def test_group_qc_page_holds_the_table_and_the_summary():
    scans = pd.DataFrame({"scan": ["sub-01"], "included": [True], "mean_fd": [0.1]})
    page = group_qc_html(
        scans,
        {
            "Computed": True,
            "NumberOfEdges": 3,
            "NumberOfSubjects": 4,
            "MedianAbsoluteR": 0.2,
            "FractionSignificant": 0.1,
            "FractionSignificantFDR": 0.0,
        },
        atlas="A",
    )
    assert "<th>mean_fd</th>" in page and "<td>sub-01</td>" in page
    assert "median |r| 0.200" in page


# ------------------------------------------------------------------- methods


def _config(**settings) -> dict:
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config.update(settings)
    return config


def _methods(config: dict) -> str:
    inputs = build_inputs(config, source="config.yaml", basedir=ROOT)
    return methods_text(
        methods_settings(inputs, SCHEMA),
        extraction={"synthetic": "least squares on maps"},
        confounds=MOTION,
        alphas={"synthetic": {"groupsparse": 0.07, "graphlasso": 0.1}},
        qcfc={
            "synthetic": {
                "Computed": True,
                "MedianAbsoluteR": 0.05,
                "FractionSignificant": 0.04,
                "FractionSignificantFDR": 0.0,
            }
        },
        versions={"sparseconn": "0.1.0", "numpy": "2.0"},
    )


def test_the_schema_defaults_are_the_shipped_config():
    shipped = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert changed_settings(shipped, schema_defaults(SCHEMA)) == []


def test_methods_of_the_default_run_cite_and_say_every_setting_is_default():
    text = _methods(_config())
    assert "Every setting is sparseconn's default." in text
    for needle in (
        "sparseconn 0.1.0",
        "numpy 2.0",
        "high-pass 0.01 Hz",
        "5 high-variance confounds",
        "trans_x",
        "grid of 4 values refined 4 times",
        "alpha 0.07 (group-sparse)",
        "median |r| 0.050",
        "Varoquaux et al. 2010",
        "Friedman et al. 2008",
        "Behzadi et al. 2007",
        "Power et al. 2012",
        "Ciric et al. 2017",
        "Abraham et al. 2014",
    ):
        assert needle in text, needle
    assert text.count("\n- ") == 7  # the references


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"high_pass": 0.02}, "``high_pass`` = 0.02 (default 0.01)"),
        ({"low_pass": 0.1}, "``low_pass`` = 0.1 (default null)"),
        ({"detrend": False}, "``detrend`` = false (default true)"),
        (
            {"group_sparse": {**_config()["group_sparse"], "alphas": 6}},
            "``group_sparse.alphas`` = 6 (default 4)",
        ),
        (
            {"graph_lasso": {"per_subject": True}},
            "``graph_lasso.per_subject`` = true (default false)",
        ),
        ({"n_subjects": 3}, "``n_subjects`` = 3 (default 10)"),
    ],
)
def test_methods_name_every_setting_that_differs_from_the_defaults(settings, named):
    text = _methods(_config(**settings))
    assert named in text
    assert "Every setting is sparseconn's default." not in text
    if "low_pass" in settings:
        assert "low-pass 0.1 Hz" in text
    if "graph_lasso" in settings:
        assert "every subject was fitted alone" in text
