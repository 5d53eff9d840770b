"""Figures: edges drawn, node positions, sizes, non-blank and reproducible bytes."""

from __future__ import annotations

import json

import matplotlib.image
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from sparseconn.errors import InputError
from sparseconn.plotting import (
    brain_mask,
    connectome_edges,
    edge_threshold_value,
    map_centre,
    parse_edge_threshold,
    plot_connectome,
    plot_cv_curve,
    plot_matrix,
    plot_subject_qc,
    qc_region_indices,
    region_coordinates,
    save_figure,
)
from sparseconn.regions import AtlasSpec
from sparseconn.steps.figures import (
    load_estimate,
    run_plot_connectome,
    run_plot_cv_curve,
    run_plot_group_figures,
    run_plot_matrices,
    run_plot_subject_qc,
    run_plot_subjects_qc,
)

SHAPE = (12, 14, 10)


def _spec(maps, labels=None):
    """The atlas of these files, as the figure steps take it."""
    return AtlasSpec("test", str(maps), None if labels is None else str(labels))


def _symmetric(rng, p=8):
    matrix = rng.standard_normal((p, p))
    return (matrix + matrix.T) / 2


def _blob(shape, centre, radius=1.6):
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    values = np.exp(-((grid - np.asarray(centre)) ** 2).sum(-1) / (2 * radius**2))
    values[values < 0.05] = 0.0
    return values


def _maps(centres, shape=SHAPE):
    return np.stack([_blob(shape, c) for c in centres], axis=-1)


def _png(path):
    """Pixels (height, width, channels) of a saved PNG."""
    return matplotlib.image.imread(path)


def _assert_not_blank(pixels):
    assert pixels[..., :3].std() > 0.02  # more than a flat background


# ------------------------------------------------------------------ thresholds


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        ("80%", ("percentile", 80.0)),
        (" 95.5 % ", ("percentile", 95.5)),
        ("100%", ("percentile", 100.0)),
        (0.3, ("absolute", 0.3)),
        ("0.25", ("absolute", 0.25)),
        (0, ("absolute", 0.0)),
    ],
)
def test_parse_edge_threshold(threshold, expected):
    assert parse_edge_threshold(threshold) == expected


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        ("abc", "neither a percentage"),
        ("150%", "above 100%"),
        (-1, "must be a number >= 0"),
        (float("nan"), "must be a number >= 0"),
    ],
)
def test_parse_edge_threshold_rejects(threshold, message):
    with pytest.raises(ValueError, match=message):
        parse_edge_threshold(threshold)


def test_percentile_threshold_uses_off_diagonal_upper_triangle(rng):
    matrix = _symmetric(rng, 10)
    np.fill_diagonal(matrix, 100.0)  # the diagonal never counts
    upper = np.abs(matrix[np.triu_indices(10, 1)])
    assert edge_threshold_value(matrix, "80%") == pytest.approx(
        np.percentile(upper, 80)
    )
    assert edge_threshold_value(matrix, 0.5) == 0.5


def test_connectome_edges_are_entries_at_or_above_threshold(rng):
    matrix = _symmetric(rng, 12)
    upper = np.abs(matrix[np.triu_indices(12, 1)])
    rows, cols, values = connectome_edges(matrix, "80%")
    assert rows.size == int((upper >= np.percentile(upper, 80)).sum())
    assert np.all(rows < cols)
    assert np.array_equal(values, matrix[rows, cols])
    assert np.all(np.diff(np.abs(values)) >= 0)  # strongest drawn last


def test_zeros_are_never_edges():
    matrix = np.eye(5)
    matrix[0, 1] = matrix[1, 0] = 0.5
    # 80% of the 10 off-diagonal entries are zero: the percentile is 0
    rows, cols, _ = connectome_edges(matrix, "80%")
    assert list(zip(rows, cols, strict=True)) == [(0, 1)]
    assert connectome_edges(np.eye(4), "0%")[0].size == 0


# ----------------------------------------------------------------- coordinates


def test_map_centre_is_world_centre_of_the_blob():
    affine = np.array([[2.0, 0, 0, -10], [0, 3.0, 0, 5], [0, 0, 4.0, 1], [0, 0, 0, 1]])
    centre = map_centre(_blob(SHAPE, (3, 6, 5)), affine)
    np.testing.assert_allclose(centre, [2 * 3 - 10, 3 * 6 + 5, 4 * 5 + 1], atol=1e-6)


def test_map_centre_takes_the_largest_component():
    values = _blob(SHAPE, (2, 3, 3), radius=1.0) + 2 * _blob(SHAPE, (9, 10, 6))
    values[values > 0] += 0  # two separate blobs, the second larger and stronger
    centre = map_centre(values, np.eye(4), percentile=50)
    np.testing.assert_allclose(centre, [9, 10, 6], atol=0.2)


def test_map_centre_of_a_negative_map():
    centre = map_centre(-_blob(SHAPE, (4, 5, 6)), np.eye(4))
    np.testing.assert_allclose(centre, [4, 5, 6], atol=1e-6)


@pytest.mark.parametrize("x_sign", [1.0, -1.0])
def test_left_map_has_negative_x_whatever_the_affine(x_sign):
    """A map in the left hemisphere (world x < 0) gets a node at x < 0.

    With ``x_sign = -1`` voxel index i grows towards the left (radiological
    storage): the same world place is at the other end of the array.
    """
    nx = SHAPE[0]
    affine = np.diag([4.0 * x_sign, 4.0, 4.0, 1.0])
    affine[0, 3] = -4.0 * x_sign * (nx - 1) / 2  # x = 0 at the array's middle
    world_x = -14.0
    i = (world_x - affine[0, 3]) / affine[0, 0]
    maps = _maps([(i, 7, 5), ((14.0 - affine[0, 3]) / affine[0, 0], 7, 5)])
    coords = region_coordinates(maps, affine)
    np.testing.assert_allclose(coords[:, 0], [-14.0, 14.0], atol=1e-6)

    drawn = plot_connectome(
        np.array([[1.0, 0.5], [0.5, 1.0]]),
        coords,
        mask=brain_mask(maps),
        affine=affine,
        edge_threshold=0,
    )
    for view in ("coronal", "axial"):
        ax = drawn.axes[view]
        offsets = drawn.node_collections[view].get_offsets()
        assert offsets[0, 0] == pytest.approx(-14.0)
        # left on the left: the left node is drawn left of the right node
        left, right = ax.transData.transform(offsets[:2])[:, 0]
        assert left < right
        assert ax.get_xlim()[0] < ax.get_xlim()[1]
    sagittal = drawn.node_collections["sagittal"].get_offsets()
    np.testing.assert_allclose(sagittal[:, 0], coords[:, 1])  # y horizontal


def test_coordinates_from_labels_first_else_from_maps():
    maps = _maps([(3, 4, 5), (8, 9, 4)])
    affine = np.eye(4)
    from_maps = region_coordinates(maps, affine)
    np.testing.assert_allclose(from_maps, [[3, 4, 5], [8, 9, 4]], atol=1e-6)
    labels = pd.DataFrame(
        {"name": ["a", "b"], "x": [-40.0, 40.0], "y": [1.0, 2.0], "z": [3.0, 4.0]}
    )
    np.testing.assert_array_equal(
        region_coordinates(maps, affine, labels), [[-40, 1, 3], [40, 2, 4]]
    )
    no_xyz = pd.DataFrame({"name": ["a", "b"], "network": ["n", "n"]})
    np.testing.assert_allclose(region_coordinates(maps, affine, no_xyz), from_maps)
    missing = labels.assign(x=[np.nan, 40.0])
    np.testing.assert_allclose(region_coordinates(maps, affine, missing), from_maps)


# ------------------------------------------------------------------ connectome


def test_connectome_draws_one_segment_per_edge_in_each_view(rng, tmp_path):
    p = 10
    centres = rng.uniform(2, np.array(SHAPE) - 3, size=(p, 3))
    maps = _maps(centres)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    matrix = _symmetric(rng, p)
    upper = np.abs(matrix[np.triu_indices(p, 1)])
    expected = int((upper >= np.percentile(upper, 80)).sum())
    drawn = plot_connectome(
        matrix,
        region_coordinates(maps, affine),
        mask=brain_mask(maps),
        affine=affine,
        title="test",
    )
    assert drawn.rows.size == expected
    for view in ("sagittal", "coronal", "axial"):
        assert len(drawn.edge_collections[view].get_segments()) == expected
        assert len(drawn.node_collections[view].get_offsets()) == p
    # an absolute threshold
    drawn = plot_connectome(
        matrix,
        region_coordinates(maps, affine),
        mask=brain_mask(maps),
        affine=affine,
        edge_threshold=0.5,
    )
    assert len(drawn.edge_collections["axial"].get_segments()) == int(
        (upper >= 0.5).sum()
    )
    save_figure(drawn.figure, tmp_path / "c.png", dpi=100)
    pixels = _png(tmp_path / "c.png")
    assert pixels.shape[:2] == (460, 1200)
    _assert_not_blank(pixels)


def test_connectome_keeps_the_strongest_edges(rng):
    p = 120
    coords = rng.uniform(0, 30, size=(p, 3))
    matrix = _symmetric(rng, p)
    drawn = plot_connectome(
        matrix,
        coords,
        mask=np.ones((10, 10, 10), bool),
        affine=np.diag([3.0, 3.0, 3.0, 1.0]),
        max_edges=50,
    )
    upper = np.abs(matrix[np.triu_indices(p, 1)])
    assert drawn.rows.size == 50
    assert len(drawn.edge_collections["axial"].get_segments()) == 50
    # the 50 largest |values| of all the off-diagonal entries
    np.testing.assert_array_equal(np.sort(np.abs(drawn.values)), np.sort(upper)[-50:])
    texts = [text.get_text() for text in drawn.figure.texts]
    assert any(text.startswith("the 50 strongest of 1428 edges") for text in texts)


def test_connectome_rejects_bad_coordinates(rng):
    with pytest.raises(ValueError, match="coords must have shape"):
        plot_connectome(
            np.eye(3), np.zeros((2, 3)), mask=np.ones((2, 2, 2), bool), affine=np.eye(4)
        )


# -------------------------------------------------------------------- matrices


@pytest.mark.parametrize("kind", ["covariance", "sparsity", "precision"])
def test_matrix_figures(rng, tmp_path, kind):
    p = 9
    matrix = _symmetric(rng, p)
    matrix[np.abs(matrix) < 0.5] = 0.0
    networks = ["a"] * 3 + ["b"] * 4 + ["c"] * 2
    names = [f"R{i}" for i in range(p)]
    figure = plot_matrix(matrix, names, kind=kind, title="t", networks=networks)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    # 2 network boundaries, one horizontal and one vertical line each
    assert len(ax.lines) == 4
    colours = {t.get_color() for t in ax.get_yticklabels()}
    assert len(colours) == 3
    image = ax.images[0]
    if kind == "covariance":
        assert image.get_clim() == (-1, 1)
    elif kind == "precision":
        span = np.abs(matrix - np.diag(np.diag(matrix))).max()
        assert image.get_clim() == pytest.approx((-span, span))
        assert np.all(np.diag(image.get_array()) == 0)
    else:
        np.testing.assert_array_equal(image.get_array(), matrix == 0)
    save_figure(figure, tmp_path / "m.png", dpi=100)
    pixels = _png(tmp_path / "m.png")
    assert pixels.shape[:2] == (680, 760)
    _assert_not_blank(pixels)


def test_large_matrix_in_network_blocks(rng):
    """400 regions whose networks alternate (as Schaefer's hemispheres do)."""
    p = 400
    networks = [("Vis", "Default", "Motor")[(i // 20) % 3] for i in range(p)]
    names = [f"{network}_{i}" for i, network in enumerate(networks)]
    matrix = _symmetric(rng, p)
    figure = plot_matrix(matrix, names, kind="covariance", networks=networks)
    ax = figure.axes[0]
    # one label per network block, blocks in order of first appearance
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Vis", "Default", "Motor"]
    np.testing.assert_array_equal(
        [t for t in ax.get_yticks()], [(0 + 139) / 2, (140 + 279) / 2, (280 + 399) / 2]
    )
    order = sorted(
        range(p), key=lambda i: (("Vis", "Default", "Motor").index(networks[i]), i)
    )
    np.testing.assert_array_equal(
        ax.images[0].get_array(), matrix[np.ix_(order, order)]
    )
    assert len(ax.lines) == 4  # two boundaries, both axes
    # without networks: every k-th region named
    plain = plot_matrix(matrix, names, kind="precision").axes[0]
    labels = [t.get_text() for t in plain.get_yticklabels()]
    assert labels == names[:: int(np.ceil(p / 80))] and len(labels) <= 80


def test_matrix_without_networks_and_bad_kind(rng):
    figure = plot_matrix(_symmetric(rng, 4), list("abcd"), kind="covariance")
    assert len(figure.axes[0].lines) == 0
    with pytest.raises(ValueError, match="kind 'other'"):
        plot_matrix(np.eye(2), ["a", "b"], kind="other")
    with pytest.raises(ValueError, match="one name per row"):
        plot_matrix(np.eye(2), ["a"], kind="covariance")


# ----------------------------------------------------------- CV curve and QC


def test_cv_curve(tmp_path):
    alphas = np.array([0.5, 0.2, 0.1, 0.08, 0.05, 0.01])
    scores = np.array([-40.0, -35.0, -32.0, -31.5, -33.0, -37.0])
    figure = plot_cv_curve(alphas, scores, 0.08, title="cv")
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    curve = ax.lines[0]
    np.testing.assert_array_equal(curve.get_xdata(), np.sort(alphas))
    chosen = [line for line in ax.lines if line.get_label().startswith("chosen")]
    assert chosen[0].get_xdata()[0] == 0.08 and chosen[0].get_ydata()[0] == -31.5
    save_figure(figure, tmp_path / "cv.png", dpi=100)
    pixels = _png(tmp_path / "cv.png")
    assert pixels.shape[:2] == (400, 600)
    _assert_not_blank(pixels)
    with pytest.raises(ValueError, match="one score per alpha"):
        plot_cv_curve(alphas, scores[:3], 0.1)


def test_qc_region_indices():
    assert list(qc_region_indices(39, 5)) == [0, 10, 19, 28, 38]
    assert list(qc_region_indices(3, 5)) == [0, 1, 2]
    assert list(qc_region_indices(1, 1)) == [0]


def test_subject_qc_figure(rng, tmp_path):
    confounds = pd.DataFrame(rng.standard_normal((50, 3)), columns=["a", "b", "c"])
    series = pd.DataFrame(rng.standard_normal((50, 7)), columns=list("ABCDEFG"))
    figure = plot_subject_qc(confounds, series, t_r=2.0, n_regions=4)
    top, bottom = figure.axes[:2]
    assert len(top.lines) == 3 and len(bottom.lines) == 4
    assert top.lines[0].get_xdata()[-1] == pytest.approx(98.0)
    save_figure(figure, tmp_path / "qc.png", dpi=100)
    pixels = _png(tmp_path / "qc.png")
    assert pixels.shape[:2] == (500, 800)
    _assert_not_blank(pixels)
    with pytest.raises(ValueError, match="rows of confounds"):
        plot_subject_qc(confounds.iloc[:10], series, t_r=None)


# ---------------------------------------------------------------- saving


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_saved_bytes_are_reproducible(rng, tmp_path, fmt):
    matrix = _symmetric(rng, 5)
    for name in ("one", "two"):
        save_figure(
            plot_matrix(matrix, list("abcde"), kind="precision"),
            tmp_path / f"{name}.{fmt}",
        )
    first = (tmp_path / f"one.{fmt}").read_bytes()
    assert first == (tmp_path / f"two.{fmt}").read_bytes()
    assert b"Matplotlib version" not in first and b"<dc:date>" not in first
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"one.{fmt}", f"two.{fmt}"]


def test_unknown_format(tmp_path, rng):
    with pytest.raises(ValueError, match="figure format 'gif'"):
        save_figure(
            plot_matrix(np.eye(2), ["a", "b"], kind="covariance"), tmp_path / "x.gif"
        )
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ figure tasks


@pytest.fixture
def group_files(tmp_path, rng):
    """A tiny atlas (4 maps, labels with networks), both .npz and one subject."""
    p = 4
    affine = np.diag([-3.0, 3.0, 3.0, 1.0])
    affine[0, 3] = 3.0 * (SHAPE[0] - 1) / 2
    centres = [(2, 4, 4), (9, 4, 4), (3, 10, 6), (8, 10, 6)]
    maps = tmp_path / "maps.nii.gz"
    nib.save(nib.Nifti1Image(_maps(centres), affine), maps)
    regions = ["L A", "R A", "L B", "R B"]
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"name": regions, "network": ["A", "A", "B", "B"]}).to_csv(
        labels, index=False
    )
    precisions = np.stack([np.eye(p) + 0.3 * _symmetric(rng, p) for _ in range(2)])
    precisions[:, 0, 3] = precisions[:, 3, 0] = 0.0
    group = tmp_path / "group.npz"
    np.savez(
        group,
        covariances=np.stack([np.linalg.inv(m) for m in precisions]),
        precisions=precisions,
        alpha=np.float64(0.1),
        cv_alphas=np.array([0.3, 0.1, 0.03]),
        cv_scores=np.array([-9.0, -8.0, -8.5]),
        subjects=np.array(["01", "02"]),
        regions=np.array(regions),
    )
    lasso = tmp_path / "lasso.npz"
    np.savez(
        lasso,
        covariance=np.eye(p),
        precision=precisions[1],
        alpha=np.float64(0.2),
        cv_alphas=np.array([0.4, 0.2]),
        cv_scores=np.array([-9.0, -8.0]),
        subject=np.array("02"),
        regions=np.array(regions),
    )
    return {"maps": maps, "labels": labels, "group": group, "lasso": lasso}


def test_load_estimate_picks_the_subject(group_files):
    fit = load_estimate(group_files["group"], "groupsparse", "02")
    with np.load(group_files["group"]) as group:
        np.testing.assert_array_equal(fit["precision"], group["precisions"][1])
    assert fit["alpha"] == 0.1 and fit["regions"][0] == "L A"
    with pytest.raises(InputError, match="'03' is not among"):
        load_estimate(group_files["group"], "groupsparse", "03")
    with pytest.raises(InputError, match="fitted on subject 02, not '01'"):
        load_estimate(group_files["lasso"], "graphlasso", "01")


def test_figure_tasks_write_every_figure(group_files, tmp_path):
    out = tmp_path / "figures"
    run_plot_connectome(
        group_files["group"],
        _spec(group_files["maps"], group_files["labels"]),
        out / "c.png",
        out / "c.svg",
        estimate="groupsparse",
        subject="01",
    )
    run_plot_connectome(
        group_files["lasso"],
        _spec(group_files["maps"]),
        out / "g.png",
        estimate="graphlasso",
        subject="02",
        edge_threshold=0.01,
        dpi=50,
    )
    run_plot_matrices(
        group_files["group"],
        _spec(group_files["maps"], group_files["labels"]),
        [out / "cov.png"],
        [out / "sp.png", out / "sp.svg"],
        [out / "prec.png"],
        estimate="groupsparse",
        subject="02",
    )
    run_plot_cv_curve(group_files["group"], out / "cv.png", estimate="groupsparse")
    assert _png(out / "c.png").shape[:2] == (460, 1200)
    assert _png(out / "g.png").shape[:2] == (230, 600)
    for name in ("c", "g", "cov", "sp", "prec", "cv"):
        _assert_not_blank(_png(out / f"{name}.png"))
    assert (out / "c.svg").read_bytes().startswith(b"<?xml")
    assert (out / "sp.svg").is_file()
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_connectome_task_refuses_another_atlas(group_files, tmp_path):
    labels = tmp_path / "other.csv"
    pd.DataFrame({"name": ["a", "b", "c", "d"]}).to_csv(labels, index=False)
    with pytest.raises(InputError, match="regions differ"):
        run_plot_connectome(
            group_files["group"],
            _spec(group_files["maps"], labels),
            tmp_path / "c.png",
            estimate="groupsparse",
            subject="01",
        )
    assert not (tmp_path / "c.png").exists()


def test_subject_qc_task(tmp_path, rng):
    confounds = tmp_path / "confounds.tsv"
    series = tmp_path / "series.tsv"
    sidecar = tmp_path / "series.json"
    pd.DataFrame(rng.standard_normal((30, 5))).add_prefix("hv").to_csv(
        confounds, sep="\t", index=False
    )
    pd.DataFrame(rng.standard_normal((30, 8))).add_prefix("R").to_csv(
        series, sep="\t", index=False
    )
    sidecar.write_text(json.dumps({"RepetitionTime": 2.5}))
    run_plot_subject_qc(confounds, series, sidecar, tmp_path / "qc.png", subject="01")
    pixels = _png(tmp_path / "qc.png")
    assert pixels.shape[:2] == (500, 800)
    _assert_not_blank(pixels)
    pd.DataFrame(rng.standard_normal((20, 5))).to_csv(confounds, sep="\t", index=False)
    with pytest.raises(InputError, match="20 rows but"):
        run_plot_subject_qc(confounds, series, sidecar, tmp_path / "x.png", subject="1")


def test_subject_qc_task_leaves_out_the_censored_volumes(tmp_path, rng):
    confounds = tmp_path / "confounds.tsv"
    series = tmp_path / "series.tsv"
    sidecar = tmp_path / "series.json"
    pd.DataFrame(rng.standard_normal((30, 5))).add_prefix("hv").to_csv(
        confounds, sep="\t", index=False
    )
    pd.DataFrame(rng.standard_normal((27, 8))).add_prefix("R").to_csv(
        series, sep="\t", index=False
    )
    sidecar.write_text(
        json.dumps({"RepetitionTime": 2.5, "CensoredVolumes": [3, 4, 5]})
    )
    run_plot_subject_qc(confounds, series, sidecar, tmp_path / "qc.png", subject="01")
    _assert_not_blank(_png(tmp_path / "qc.png"))


def test_group_figures_task_writes_each_figure_as_its_own_task(group_files, tmp_path):
    # One job draws every group-level figure of both estimates: the bytes are
    # those of each figure drawn alone.
    alone, batch = tmp_path / "alone", tmp_path / "batch"
    estimates = {
        "groupsparse": group_files["group"],
        "graphlasso": group_files["lasso"],
    }
    kinds = ("connectome", "covariance", "sparsity", "precision", "cv")
    files = {
        kind: [
            [batch / f"{kind}_{e}.png", batch / f"{kind}_{e}.svg"] for e in estimates
        ]
        for kind in kinds
    }
    run_plot_group_figures(
        list(estimates.values()),
        _spec(group_files["maps"], group_files["labels"]),
        files,
        estimates=list(estimates),
        subject="02",
        dpi=50,
    )
    for estimate, npz in estimates.items():
        single = {
            kind: [alone / f"{kind}_{estimate}.{ext}" for ext in ("png", "svg")]
            for kind in kinds
        }
        common = {"estimate": estimate, "subject": "02", "dpi": 50}
        run_plot_connectome(
            npz,
            _spec(group_files["maps"], group_files["labels"]),
            *single["connectome"],
            **common,
        )
        run_plot_matrices(
            npz,
            _spec(group_files["maps"], group_files["labels"]),
            single["covariance"],
            single["sparsity"],
            single["precision"],
            **common,
        )
        run_plot_cv_curve(npz, *single["cv"], estimate=estimate, dpi=50)
    written = sorted(p.name for p in batch.iterdir())
    assert written == sorted(p.name for p in alone.iterdir())
    assert len(written) == 20
    for name in written:
        assert (batch / name).read_bytes() == (alone / name).read_bytes(), name


def test_group_figures_task_wants_the_files_of_every_estimate(group_files, tmp_path):
    files = {
        kind: [[tmp_path / f"{kind}.png"]]
        for kind in ("connectome", "covariance", "sparsity", "precision", "cv")
    }
    with pytest.raises(ValueError, match="1 connectome figures for 2 estimates"):
        run_plot_group_figures(
            [group_files["group"], group_files["lasso"]],
            _spec(group_files["maps"]),
            files,
            estimates=["groupsparse", "graphlasso"],
            subject="02",
        )
    assert not list(tmp_path.glob("*.png"))


def test_subjects_qc_task_draws_each_subject(tmp_path, rng):
    inputs = []
    for subject in ("01", "02"):
        confounds = tmp_path / f"{subject}_confounds.tsv"
        series = tmp_path / f"{subject}_series.tsv"
        sidecar = tmp_path / f"{subject}_series.json"
        pd.DataFrame(rng.standard_normal((30, 5))).add_prefix("hv").to_csv(
            confounds, sep="\t", index=False
        )
        pd.DataFrame(rng.standard_normal((30, 8))).add_prefix("R").to_csv(
            series, sep="\t", index=False
        )
        sidecar.write_text(json.dumps({"RepetitionTime": 2.5}))
        inputs.append((confounds, series, sidecar))
    outputs = [tmp_path / "qc_01.png", tmp_path / "qc_02.png"]
    confounds, series, sidecars = (list(files) for files in zip(*inputs, strict=True))
    run_plot_subjects_qc(
        confounds, series, sidecars, outputs, subjects=["01", "02"], dpi=50
    )
    for subject, paths, png in zip(("01", "02"), inputs, outputs, strict=True):
        alone = tmp_path / f"alone_{subject}.png"
        run_plot_subject_qc(*paths, alone, subject=subject, dpi=50)
        assert png.read_bytes() == alone.read_bytes()
    assert outputs[0].read_bytes() != outputs[1].read_bytes()
    with pytest.raises(ValueError, match="2 subjects but 1 confounds"):
        run_plot_subjects_qc(
            confounds[:1], series, sidecars, outputs, subjects=["01", "02"]
        )


# ------------------------------------------------------------ stability


def _stability_path_data(p=6, n_alphas=5):
    """Probabilities rising down the path; edges (0, 1) and (2, 3) early."""
    rows, cols = np.triu_indices(p, 1)
    probabilities = np.zeros((n_alphas, p, p))
    ramp = np.linspace(0, 1, n_alphas)
    for index, (i, j) in enumerate(zip(rows, cols, strict=True)):
        early = (i, j) in ((0, 1), (2, 3))
        values = np.minimum(1, ramp * (3 if early else 0.4 + 0.05 * index))
        probabilities[:, i, j] = probabilities[:, j, i] = values
    alphas = np.logspace(0, -1, n_alphas)
    return alphas, probabilities


def test_stability_path_draws_every_edge_and_marks_the_true_ones():
    from sparseconn.plotting import plot_stability_path

    alphas, probabilities = _stability_path_data()
    truth = np.zeros((6, 6), dtype=bool)
    for i, j in ((0, 1), (2, 3), (4, 5)):
        truth[i, j] = truth[j, i] = True
    drawn = plot_stability_path(alphas, probabilities, 0.9, 3, true_support=truth)
    assert drawn.n_marked == 3
    assert len(drawn.marked.get_segments()) == 3
    assert len(drawn.others.get_segments()) == 15 - 3
    # each marked line is its edge's probabilities along the path
    marked = {tuple(np.round(s[:, 1], 12)) for s in drawn.marked.get_segments()}
    assert tuple(np.round(probabilities[:, 0, 1], 12)) in marked
    ax = drawn.figure.axes[0]
    assert [line.get_ydata()[0] for line in ax.get_lines()] == [0.9]  # threshold
    labels = ax.get_legend_handles_labels()[1]
    assert "true edges (3)" in labels


def test_stability_path_marks_the_stable_edges_without_a_truth():
    from sparseconn.plotting import plot_stability_path

    alphas, probabilities = _stability_path_data()
    stable = probabilities[:3].max(axis=0) >= 0.9
    drawn = plot_stability_path(alphas, probabilities, 0.9, 3, stable_support=stable)
    assert drawn.n_marked == int(np.triu(stable, 1).sum()) == 2
    assert "stable edges (2)" in drawn.figure.axes[0].get_legend_handles_labels()[1]


def test_probability_matrix_spans_zero_to_one(tmp_path):
    matrix = np.array([[0.0, 0.95, 0.1], [0.95, 0.0, 0.4], [0.1, 0.4, 0.0]])
    figure = plot_matrix(matrix, ["a", "b", "c"], kind="probability")
    image = figure.axes[0].get_images()[0]
    assert image.get_clim() == (0, 1)
    shown = image.get_array()
    assert np.ma.getmaskarray(shown).diagonal().all()  # blank: not a probability
    np.testing.assert_array_equal(shown[0, 1], 0.95)


def test_group_figures_task_draws_the_stability_figures(group_files, tmp_path):
    from sparseconn.steps.figures import STABILITY_FIGURE_KINDS

    alphas, probabilities = _stability_path_data(p=4, n_alphas=4)
    support = probabilities[:2].max(axis=0) >= 0.9
    with np.load(group_files["group"]) as group:
        precisions, regions = group["precisions"], group["regions"]
    stable = np.where(support | np.eye(4, dtype=bool), precisions, 0.0)
    stability = tmp_path / "stability.npz"
    np.savez(
        stability,
        alphas=alphas,
        probabilities=probabilities,
        max_probabilities=probabilities[:2].max(axis=0),
        support=support,
        threshold=np.float64(0.9),
        n_selection_alphas=np.int64(2),
        false_edges_bound=np.float64(0.5),
        n_resamples=np.int64(10),
        stable_precisions=stable,
        subjects=np.array(["01", "02"]),
        regions=regions,
    )
    truth = tmp_path / "truth.npz"
    true_support = np.zeros((4, 4), dtype=bool)
    true_support[0, 1] = true_support[1, 0] = True
    np.savez(truth, support=true_support, regions=regions)
    files = {
        kind: [[tmp_path / f"{kind}_{e}.png"] for e in ("groupsparse", "graphlasso")]
        for kind in ("connectome", "covariance", "sparsity", "precision", "cv")
    }
    stability_files = {
        kind: [tmp_path / f"{kind}.png"] for kind in STABILITY_FIGURE_KINDS
    }
    run_plot_group_figures(
        [group_files["group"], group_files["lasso"]],
        _spec(group_files["maps"], group_files["labels"]),
        files,
        estimates=["groupsparse", "graphlasso"],
        subject="02",
        dpi=40,
        stability_npz=stability,
        stability_files=stability_files,
        truth=truth,
    )
    for kind in STABILITY_FIGURE_KINDS:
        _assert_not_blank(_png(tmp_path / f"{kind}.png"))
    with pytest.raises(ValueError, match="no files for the stability figures"):
        run_plot_group_figures(
            [group_files["group"], group_files["lasso"]],
            _spec(group_files["maps"]),
            files,
            estimates=["groupsparse", "graphlasso"],
            subject="02",
            stability_npz=stability,
        )
