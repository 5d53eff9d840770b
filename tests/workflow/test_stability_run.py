"""Stability selection switched on in a real synthetic run (small and quick).

Four subjects of 100 volumes and 10 halves: the rule writes its ``.npz``, the
per-subject relmats (the other relmats' node order) and their inherited
sidecars, the figures, and the science check's stable-set and EBIC rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"
SETTINGS = {
    "n_subjects": 4,
    "synthetic": {"n_volumes": 100},
    "figures": {"subject_qc": False},
    "stability": {"enabled": True, "n_resamples": 10, "n_blocks": 4},
}
SUBJECTS = ("01", "02", "03", "04")


@pytest.fixture(scope="module")
def results(tmp_path_factory, run_snakemake) -> Path:
    folder = tmp_path_factory.mktemp("stability")
    config = folder / "test.yaml"
    config.write_text(yaml.safe_dump(SETTINGS))
    result = run_snakemake(
        "--configfile", ROOT_CONFIG, config, "--cores", "2", cwd=folder, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "results"


def test_stability_rule_writes_relmats_in_the_node_order_of_the_others(results):
    for subject in SUBJECTS:
        func = results / f"sub-{subject}" / "func"
        stem = f"sub-{subject}_atlas-synthetic"
        reference = pd.read_csv(
            func / f"{stem}_stat-precision_desc-groupsparse_relmat.tsv", sep="\t"
        )
        for name in (
            "stat-selectionprobability_desc-groupsparse",
            "stat-precision_desc-groupsparsestable",
        ):
            relmat = pd.read_csv(func / f"{stem}_{name}_relmat.tsv", sep="\t")
            assert list(relmat["Node"]) == list(reference["Node"])
            assert list(relmat.columns) == list(reference.columns)
        probability = pd.read_csv(
            func / f"{stem}_stat-selectionprobability_desc-groupsparse_relmat.tsv",
            sep="\t",
        ).iloc[:, 1:]
        assert ((probability >= 0) & (probability <= 1)).all().all()
    with np.load(results / "group/atlas-synthetic_desc-stability_selection.npz") as fit:
        assert list(fit["subjects"]) == list(SUBJECTS)
        assert int(fit["n_resamples"]) == 10
        np.testing.assert_array_equal(fit["support"], fit["max_probabilities"] >= 0.9)
        assert float(fit["false_edges_bound"]) >= 0


def test_stability_sidecars_state_the_method(results):
    with np.load(
        results / "group/atlas-synthetic_desc-groupsparse_connectome.npz"
    ) as g:
        cv_alpha = float(g["alpha"])
    for name, measure in (
        ("stat-selectionprobability_desc-groupsparse", "selection probability"),
        ("stat-precision_desc-groupsparsestable", "precision"),
    ):
        sidecar = json.loads(
            (results / f"atlas-synthetic_{name}_relmat.json").read_text()
        )
        assert sidecar["Measure"] == measure
        for key in ("Weighted", "Directed", "ValidDiagonal", "StorageFormat"):
            assert key in sidecar
        fields = sidecar["StabilitySelection"]
        assert fields["Threshold"] == 0.9 and fields["NResamples"] == 10
        assert fields["Scheme"] == "time" and fields["NBlocks"] == 4
        assert fields["AlphaCV"] == cv_alpha and fields["AlphaEBIC"] > 0
        assert fields["FalseEdgesBound"] >= 0 and "Method" in fields
        assert len(sidecar["Sources"]) == len(SUBJECTS)


def test_science_check_has_the_stable_set_and_ebic_rows(results):
    group = results / "group"
    recovery = pd.read_csv(group / "atlas-synthetic_desc-recovery_scores.tsv", sep="\t")
    heldout = pd.read_csv(
        group / "atlas-synthetic_desc-heldout_loglikelihood.tsv", sep="\t"
    )
    for table in (recovery, heldout):
        assert {"group_sparse_stable", "group_sparse_ebic"} <= set(table["estimator"])
    stable = recovery[recovery["estimator"] == "group_sparse_stable"]
    assert len(stable) == len(SUBJECTS)
    assert stable[["precision", "recall", "f1"]].notna().all().all()
    rows = heldout[heldout["estimator"] == "group_sparse_stable"]
    assert len(rows) == 2 * len(SUBJECTS)  # two held-out folds
    assert np.isfinite(rows["log_likelihood"]).all()


def test_stability_figures_are_drawn(results):
    figures = results / "figures"
    for name in (
        "atlas-synthetic_desc-stability_path.png",
        "atlas-synthetic_stat-selectionprobability_desc-groupsparse_matrix.png",
        "sub-01_atlas-synthetic_desc-groupsparsestable_connectome.png",
    ):
        assert (figures / name).stat().st_size > 1000, name
