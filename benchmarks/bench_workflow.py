"""Wall time of the whole default workflow against the seed script, in one run.

For each subject count (default 10 and 40) in a fresh folder:

1. ``inputs``: the workflow generates the synthetic dataset (rules
   ``synthetic_atlas`` and ``synthetic_subject``: their files as targets);
2. ``workflow``: the whole default workflow from those inputs (config as shipped:
   every subject's confounds and time series, the cross-validated group-sparse
   fit, the graph lasso, relmats, every figure, the science check and the QC
   figures), with the slowest job and the per-rule sums of its benchmarks;
3. ``seed``: the seed script on the same files, with nilearn, as nilearn's example
   does it: for each subject ``high_variance_confounds`` +
   ``NiftiMapsMasker(...).fit_transform``, then ``GroupSparseCovarianceCV().fit``
   on all subjects and ``GraphicalLassoCV().fit`` on the first, and the example's
   figures (connectome, covariance and precision matrices of both estimates);
4. ``no-op``: ``snakemake --cores N`` again, with nothing to do.

For the workflow and the seed, the CPU seconds (user + system, of every process
and thread of the run) are printed too: ``CPU / cores`` is the shortest wall
time in which that much work can run on those cores however it is scheduled, so
a target below it needs less work, not better packing. Last, the same workflow
on the same files in a fresh folder with ``science_check: false`` (the
per-subject graph lasso cross-validations, held-out fits and recovery scores
left out; everything else as shipped), to show what the science check costs.

Then the dry run (``snakemake -n``) of the workflow with 1000 subjects. Targets
(issue 16): seed / workflow >= 6 at 10 subjects and >= 10 at 40, no job over 10 s
at 10 subjects, no-op <= 2 s, 1000-subject dry run <= 10 s. Other processes on
the machine share its cores: the load average is printed.

    python benchmarks/bench_workflow.py [--subjects 10 40] [--cores 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sparseconn.synthetic import subject_ids  # noqa: E402

SNAKEMAKE = Path(sys.executable).parent / "snakemake"
TR = 2.5
HIGH_PASS = 0.01


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds of this process (all its threads), or with
    ``resource.RUSAGE_CHILDREN`` of its child processes waited for."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def snakemake(folder: Path, *args: str) -> tuple[float, float]:
    """Run the workflow in ``folder`` (default workflow profile).

    Returns its wall seconds and its CPU seconds (Snakemake's process and every
    job process it waited for).
    """
    command = [
        str(SNAKEMAKE),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(folder),
        "--configfile",
        str(ROOT / "config" / "config.yaml"),
        str(folder / "bench.yaml"),
        *args,
    ]
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return elapsed, cpu_seconds(resource.RUSAGE_CHILDREN) - cpu


def synthetic_inputs(n_subjects: int) -> list[str]:
    """The generated dataset's files (the outputs of the synthetic rules)."""
    files = [f"atlas_{name}" for name in ("maps.nii.gz", "labels.csv", "truth.npz")]
    for subject in subject_ids(n_subjects):
        files += [
            f"sub-{subject}_bold.nii.gz",
            f"sub-{subject}_desc-confounds_timeseries.tsv",
            f"sub-{subject}_truth.npz",
        ]
    return [f"resources/synthetic/{name}" for name in files]


def seed_script(folder: Path, n_subjects: int) -> tuple[float, float]:
    """nilearn's example flow on the generated files; wall and CPU seconds."""
    cpu = cpu_seconds()
    start = time.perf_counter()
    from nilearn.connectome import GroupSparseCovarianceCV
    from nilearn.image import high_variance_confounds
    from nilearn.maskers import NiftiMapsMasker
    from sklearn.covariance import GraphicalLassoCV

    synthetic = folder / "resources" / "synthetic"
    masker = NiftiMapsMasker(
        maps_img=str(synthetic / "atlas_maps.nii.gz"),
        resampling_target="maps",
        detrend=True,
        high_pass=HIGH_PASS,
        t_r=TR,
        standardize="zscore_sample",
    )
    subject_time_series = []
    for subject in subject_ids(n_subjects):
        func = str(synthetic / f"sub-{subject}_bold.nii.gz")
        confounds_file = synthetic / f"sub-{subject}_desc-confounds_timeseries.tsv"
        confounds = high_variance_confounds(func)
        region_ts = masker.fit_transform(
            func, confounds=[confounds, str(confounds_file)]
        )
        subject_time_series.append(region_ts)
    group = GroupSparseCovarianceCV().fit(subject_time_series)
    graph_lasso = GraphicalLassoCV().fit(subject_time_series[0])
    seed_figures(
        synthetic / "atlas_maps.nii.gz",
        {
            "groupsparse": (group.covariances_[..., 0], group.precisions_[..., 0]),
            "graphlasso": (graph_lasso.covariance_, graph_lasso.precision_),
        },
        folder / "seed_figures",
    )
    return time.perf_counter() - start, cpu_seconds() - cpu


def seed_figures(maps: Path, estimates: dict, out: Path) -> None:
    """The example's figures: connectome (edges above the 80th percentile) and
    the covariance, sparsity and precision matrices of each estimate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nilearn import plotting

    out.mkdir()
    coords = plotting.find_probabilistic_atlas_cut_coords(str(maps))
    for name, (covariance, precision) in estimates.items():
        display = plotting.plot_connectome(
            -precision, coords, edge_threshold="80%", title=name
        )
        display.savefig(out / f"{name}_connectome.png")
        display.close()
        for kind, matrix in (
            ("covariance", covariance),
            ("sparsity", precision == 0),
            ("precision", -precision),
        ):
            plotting.plot_matrix(matrix, title=f"{name} {kind}")
            plt.savefig(out / f"{name}_{kind}.png")
            plt.close("all")


def job_seconds(folder: Path) -> dict[str, list[float]]:
    """Wall seconds of each job of the run, by rule (Snakemake's benchmarks)."""
    seconds: dict[str, list[float]] = {}
    for path in sorted((folder / "results" / "benchmarks").rglob("*.tsv")):
        rule = path.relative_to(folder / "results" / "benchmarks").parts[0]
        lines = path.read_text().splitlines()
        seconds.setdefault(rule, []).append(float(lines[1].split("\t")[0]))
    return seconds


def bench(n_subjects: int, cores: int, base: Path) -> dict:
    folder = base / f"subjects-{n_subjects}"
    folder.mkdir()
    (folder / "bench.yaml").write_text(yaml.safe_dump({"n_subjects": n_subjects}))
    times: dict = {}
    times["inputs"], _ = snakemake(
        folder, "--cores", str(cores), *synthetic_inputs(n_subjects)
    )
    times["workflow"], times["workflow_cpu"] = snakemake(folder, "--cores", str(cores))
    jobs = job_seconds(folder)
    generation = {"synthetic_atlas", "synthetic_subject"}
    times["jobs"] = {rule: t for rule, t in jobs.items() if rule not in generation}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times["seed"], times["seed_cpu"] = seed_script(folder, n_subjects)
    times["noop"], _ = snakemake(folder, "--cores", str(cores))
    bare = base / f"subjects-{n_subjects}-no-science-check"
    bare.mkdir()
    shutil.copy(folder / "bench.yaml", bare / "bench.yaml")
    shutil.copytree(folder / "resources", bare / "resources")
    times["bare"], times["bare_cpu"] = snakemake(
        bare, "--cores", str(cores), "--config", "science_check=false"
    )
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, nargs="*", default=[10, 40])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--dry-run-subjects", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="bench_workflow-"))
    print(f"cores {args.cores}; machine has {os.cpu_count()} CPUs; folders in {base}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = "subjects   inputs s  workflow s    seed s  seed/workflow  no-op s"
    print(header)
    ok = True
    try:
        for n_subjects in args.subjects:
            t = bench(n_subjects, args.cores, base)
            ratio = t["seed"] / t["workflow"]
            target = 6 if n_subjects <= 10 else 10
            ok &= ratio >= target and t["noop"] <= 2
            print(
                f"{n_subjects:8d} {t['inputs']:10.1f} {t['workflow']:11.1f} "
                f"{t['seed']:9.1f} {ratio:14.2f} {t['noop']:8.2f}",
                flush=True,
            )
            slowest = max(
                (seconds, rule)
                for rule, times in t["jobs"].items()
                for seconds in times
            )
            if n_subjects <= 10:
                ok &= slowest[0] <= 10
            print(
                "    jobs (rule: count, sum s, max s): "
                + ", ".join(
                    f"{rule}: {len(times)}, {sum(times):.1f}, {max(times):.1f}"
                    for rule, times in sorted(t["jobs"].items())
                )
            )
            print(f"    slowest job: {slowest[1]} {slowest[0]:.1f} s")
            floor = t["workflow_cpu"] / args.cores
            print(
                f"    CPU s: workflow {t['workflow_cpu']:.1f} (/ {args.cores} cores "
                f"= {floor:.1f} s, the wall floor of this work), seed "
                f"{t['seed_cpu']:.1f}; the {target}x target is a wall of "
                f"{t['seed'] / target:.1f} s"
                + (": below the floor" if t["seed"] / target < floor else ""),
            )
            print(
                f"    without the science check: {t['bare']:.1f} s "
                f"({t['seed'] / t['bare']:.2f}x the seed), CPU {t['bare_cpu']:.1f} s",
                flush=True,
            )
        dry = base / "dry-run"
        dry.mkdir()
        (dry / "bench.yaml").write_text(
            yaml.safe_dump({"n_subjects": args.dry_run_subjects})
        )
        dry_seconds, _ = snakemake(dry, "-n", "--quiet", "all")
        ok &= dry_seconds <= 10
        print(f"dry run of {args.dry_run_subjects} subjects: {dry_seconds:.1f} s")
    finally:
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(
        "targets (seed/workflow >= 6 at 10 subjects and >= 10 at 40, no job over "
        "10 s at 10, no-op <= 2 s, dry run <= 10 s): " + ("met" if ok else "NOT met")
    )


if __name__ == "__main__":
    main()
