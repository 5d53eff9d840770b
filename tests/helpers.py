"""Tiny NIfTI and table factories shared by the tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd


def make_func(
    path: Path,
    rng: np.random.Generator,
    shape: tuple[int, int, int] = (9, 10, 8),
    n_volumes: int = 40,
    affine: np.ndarray | None = None,
    dtype: str = "float32",
    t_r: float | None = 2.5,
) -> np.ndarray:
    """Write a small random 4D image (baseline + noise); return its float data."""
    affine = np.diag([3.0, 3.0, 3.0, 1.0]) if affine is None else affine
    data = 100.0 + rng.standard_normal((*shape, n_volumes)) * 5.0
    data = data.astype(dtype) if dtype.startswith("float") else np.round(data)
    image = nib.Nifti1Image(data.astype(dtype), affine)
    if dtype.startswith("int"):
        image.header.set_slope_inter(1.0, 0.0)
    image.header.set_xyzt_units("mm", "sec")
    if t_r is not None:
        image.header["pixdim"][4] = t_r
    nib.save(image, path)
    return np.asarray(image.dataobj, dtype=np.float64)


def make_maps(
    path: Path,
    rng: np.random.Generator,
    shape: tuple[int, int, int] = (7, 8, 6),
    n_regions: int = 4,
    affine: np.ndarray | None = None,
) -> np.ndarray:
    """Write a small 4D atlas of positive, overlapping blobs; return its data."""
    affine = np.diag([4.0, 4.0, 4.0, 1.0]) if affine is None else affine
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    maps = np.empty((*shape, n_regions))
    for region in range(n_regions):
        centre = rng.uniform(1, np.array(shape) - 2)
        maps[..., region] = np.exp(-((grid - centre) ** 2).sum(-1) / 4.0)
    maps[maps < 0.05] = 0.0
    nib.save(nib.Nifti1Image(maps, affine), path)
    return maps


def write_table(path: Path, frame: pd.DataFrame, sep: str = "\t") -> Path:
    """Write ``frame`` as a delimited text table with a header row."""
    frame.to_csv(path, sep=sep, index=False)
    return path


#: Folders of the results whose bytes differ between identical runs: each job's
#: log and Snakemake's benchmark timings.
RUN_RECORDS = ("logs", "benchmarks")


def output_files(folder: Path) -> list[Path]:
    """Files a run wrote under results/ and resources/ (relative), records aside."""
    return sorted(
        path.relative_to(folder)
        for sub in ("results", "resources")
        for path in (folder / sub).rglob("*")
        if path.is_file()
        and not (
            sub == "results" and path.relative_to(folder / sub).parts[0] in RUN_RECORDS
        )
    )


def count_reads(monkeypatch) -> list[Path]:
    """The images decompressed from now on (each ``iter_volume_chunks`` pass).

    ``monkeypatch`` is pytest's fixture: every module that streams an image
    (``io``, ``signals``, ``confounds``) sees the counting reader.
    """
    from sparseconn import io

    reads: list[Path] = []
    original = io.iter_volume_chunks

    def counted(*args, **kwargs):
        reads.append(args[0].path)
        return original(*args, **kwargs)

    for module in ("sparseconn.io", "sparseconn.signals", "sparseconn.confounds"):
        monkeypatch.setattr(f"{module}.iter_volume_chunks", counted)
    return reads
