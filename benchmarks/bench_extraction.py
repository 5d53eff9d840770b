"""Per-subject extraction: sparseconn vs nilearn vs the read floor, in one run.

Generates one synthetic subject with the real data's geometry (61x73x61x176,
gzipped) and the 39-map atlas, then prints, each the best of ``--repeat`` runs:

- ours: high-variance confounds + extraction and cleaning, from one streamed
  read of the image (rule ``extract_timeseries``'s step, files written);
- nilearn: ``high_variance_confounds`` + ``NiftiMapsMasker(...).fit_transform``;
- floor: ``nibabel.load(func).get_fdata(dtype=float32)``;
- ours with two atlases (the maps and their parcellation) from the same one read;

and the peak RSS of that job run as a fresh process, against the size of the
image as float32. Targets: ours <= 2x the floor, >= 10x nilearn, peak RSS <= 1.5x
the float32 image.

BLAS runs on one thread (``--threads``), as in a one-thread Snakemake job.

Usage: python benchmarks/bench_extraction.py [--dtype int16|float32] [--repeat 3]
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    _threads = (
        sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    )
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_variable, _threads)

import argparse
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

from sparseconn import synthetic
from sparseconn.regions import AtlasSpec
from sparseconn.steps.subject import run_extract_timeseries

# Peak RSS read from /proc (VmHWM): ru_maxrss of a forked child would include the
# pages of this (large) parent process.
JOB = """
import re, sys, time
from sparseconn.steps.subject import run_extract_timeseries
folder = sys.argv[1]
from sparseconn.regions import AtlasSpec
atlas = AtlasSpec("synthetic", f"{folder}/maps.nii.gz", f"{folder}/labels.csv")
start = time.perf_counter()
run_extract_timeseries(
    f"{folder}/func.nii.gz", [atlas], [f"{folder}/confounds.tsv"],
    [f"{folder}/ts_job.tsv"], [f"{folder}/ts_job.json"], f"{folder}/hv_job.tsv",
    subject="01",
)
seconds = time.perf_counter() - start
status = open("/proc/self/status").read()
print(seconds, re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
"""


# The same work as fresh processes, imports included (as one SLURM job each).
NILEARN_JOB = """
import sys, warnings
warnings.simplefilter("ignore")
from nilearn.image import high_variance_confounds
from nilearn.maskers import NiftiMapsMasker
folder = sys.argv[1]
confounds = high_variance_confounds(f"{folder}/func.nii.gz")
NiftiMapsMasker(
    f"{folder}/maps.nii.gz", resampling_target="maps", detrend=True, high_pass=0.01,
    t_r=2.5, standardize="zscore_sample",
).fit_transform(
    f"{folder}/func.nii.gz", confounds=[confounds, f"{folder}/confounds.tsv"]
)
"""
FLOOR_JOB = """
import sys
import nibabel, numpy
nibabel.load(f"{sys.argv[1]}/func.nii.gz").get_fdata(dtype=numpy.float32)
"""


def process_seconds(repeat: int, job: str, folder: Path) -> tuple[float, str]:
    """Smallest wall time of ``repeat`` fresh processes running ``job``; the
    last one's output."""
    times, output = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        output = subprocess.run(
            [sys.executable, "-c", job, str(folder)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        times.append(time.perf_counter() - start)
    return min(times), output


def best_of(repeat: int, function) -> float:
    """Smallest wall time of ``repeat`` calls of ``function``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Generate the subject, time the three contenders, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="int16", choices=["int16", "float32"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", default="1", help="BLAS threads (default 1)")
    args = parser.parse_args()

    from nilearn.image import high_variance_confounds
    from nilearn.maskers import NiftiMapsMasker

    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        func, maps, labels = (
            folder / "func.nii.gz",
            folder / "maps.nii.gz",
            folder / "labels.csv",
        )
        synthetic.generate_atlas(
            maps,
            labels,
            folder / "atlas_truth.npz",
            dseg_path=folder / "dseg.nii.gz",
            dseg_table_path=folder / "dseg.tsv",
        )
        atlases = [
            AtlasSpec("synthetic", str(maps), str(labels)),
            AtlasSpec("parc", str(folder / "dseg.nii.gz"), str(folder / "dseg.tsv")),
        ]
        synthetic.generate_subject(
            func,
            folder / "confounds.tsv",
            folder / "truth.npz",
            atlas_truth_path=folder / "atlas_truth.npz",
            subject_index=0,
            subject="01",
            dtype=args.dtype,
        )
        image = nib.load(func)
        float32_mb = np.prod(image.shape) * 4 / 2**20
        size_mb = func.stat().st_size / 2**20
        print(
            f"subject: {image.shape} {args.dtype} gzipped {size_mb:.1f} MB, "
            f"{float32_mb:.0f} MB as float32"
        )

        def ours(n_atlases: int = 1) -> None:
            run_extract_timeseries(
                func,
                atlases[:n_atlases],
                [folder / "confounds.tsv"],
                [folder / f"ts{i}.tsv" for i in range(n_atlases)],
                [folder / f"ts{i}.json" for i in range(n_atlases)],
                folder / "hv.tsv",
                [folder / f"regions{i}.tsv" for i in range(n_atlases)],
                subject="01",
            )

        def reference() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                confounds = high_variance_confounds(str(func))
                NiftiMapsMasker(
                    str(maps),
                    resampling_target="maps",
                    detrend=True,
                    high_pass=0.01,
                    t_r=2.5,
                    standardize="zscore_sample",
                ).fit_transform(
                    str(func), confounds=[confounds, str(folder / "confounds.tsv")]
                )

        def floor() -> None:
            nib.load(func).get_fdata(dtype=np.float32)

        t_ours = best_of(args.repeat, ours)
        t_nilearn = best_of(args.repeat, reference)
        t_floor = best_of(args.repeat, floor)
        t_two = best_of(args.repeat, lambda: ours(2))
        print(
            f"ours     (confounds + extraction; warm: the atlas read and its "
            f"operators built once per process, as for a run's later scans): "
            f"{t_ours:7.2f} s"
        )
        print(
            f"ours, two atlases (maps + their parcellation), one read: {t_two:7.2f} s"
            f" = {t_two / t_ours:4.2f}x one atlas"
        )
        print(f"nilearn  (same work)             : {t_nilearn:7.2f} s")
        print(f"floor    (nibabel load, float32) : {t_floor:7.2f} s")
        print(
            f"speed-up vs nilearn: {t_nilearn / t_ours:5.1f}x   "
            f"ours / floor: {t_ours / t_floor:4.2f}x"
        )
        p_ours, out = process_seconds(args.repeat, JOB, folder)
        p_nilearn, _ = process_seconds(args.repeat, NILEARN_JOB, folder)
        p_floor, _ = process_seconds(args.repeat, FLOOR_JOB, folder)
        cold, peak_kb = out.split()[-2:]
        peak_mb = int(peak_kb) / 1024
        print(
            f"ours, cold (a fresh process's first scan: atlas read, operators "
            f"built): {float(cold):5.2f} s"
        )
        print(
            f"as fresh processes, imports included (one SLURM job each): ours "
            f"{p_ours:5.2f} s, nilearn {p_nilearn:5.2f} s, floor {p_floor:5.2f} s: "
            f"{p_nilearn / p_ours:4.1f}x nilearn, {p_ours / p_floor:4.2f}x the floor"
        )
        print(
            f"peak RSS of the job: {peak_mb:6.0f} MB = "
            f"{peak_mb / float32_mb:4.2f} x the float32 image"
        )


if __name__ == "__main__":
    main()
