"""The default workflow at scale: wall time, jobs and memory of each job kind.

1. In a fresh folder, the workflow generates ``--subjects`` synthetic subjects
   (default 200; not timed as part of the run), then runs the whole default
   workflow on them (``--cores``, default profile: jobs in threads and forked
   children of one Snakemake process) and prints its wall time and, per rule,
   the jobs, their summed and largest wall seconds (Snakemake's benchmarks).
2. Peak memory of each job kind as a SLURM job would see it: the default
   workflow on ``--rss-subjects`` (default 10) with no workflow profile, so that
   every job runs in a Snakemake process of its own, whose peak RSS (children
   included) Snakemake's benchmark records.

Then a projection to ``--project`` subjects (default 1000) on a SLURM cluster,
with the profile's grouping (one job per subject for generation + extraction):
jobs by kind, core-hours (per-subject work scales with the subjects, the group
fits measured at ``--subjects``), and the memory each job asks for.

    python benchmarks/bench_scale.py [--subjects 200] [--cores 2]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml
from bench_workflow import ROOT, snakemake, synthetic_inputs

#: Rules whose jobs are one per subject (the others: one per run, or per batch).
PER_SUBJECT = {"synthetic_subject", "extract_timeseries"}


def rule_records(folder: Path) -> dict[str, list[tuple[float, float]]]:
    """(wall seconds, peak RSS MB) of each job of the run, by rule."""
    records: dict[str, list[tuple[float, float]]] = {}
    base = folder / "results" / "benchmarks"
    for path in sorted(base.rglob("*.tsv")):
        header, values = path.read_text().splitlines()[:2]
        row = dict(zip(header.split("\t"), values.split("\t"), strict=True))
        rss = float(row["max_rss"]) if row["max_rss"] != "NA" else math.nan
        rule = path.relative_to(base).parts[0]
        records.setdefault(rule, []).append((float(row["s"]), rss))
    return records


def run(folder: Path, n_subjects: int, cores: int, *extra: str) -> float:
    """Generate the inputs, then time the whole default workflow."""
    folder.mkdir()
    (folder / "bench.yaml").write_text(yaml.safe_dump({"n_subjects": n_subjects}))
    snakemake(folder, "--cores", str(cores), *extra, *synthetic_inputs(n_subjects))
    start = time.perf_counter()
    snakemake(folder, "--cores", str(cores), *extra)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--rss-subjects", type=int, default=10)
    parser.add_argument("--project", type=int, default=1000)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench_scale-"))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        wall = run(base / "scale", args.subjects, args.cores)
        timing = rule_records(base / "scale")
        print(
            f"{args.subjects} subjects, --cores {args.cores}: whole default run "
            f"{wall:.1f} s (inputs generated beforehand)"
        )
        run(base / "rss", args.rss_subjects, args.cores, "--workflow-profile", "none")
        memory = rule_records(base / "rss")
    finally:
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        shutil.rmtree(base, ignore_errors=True)
    scale = args.project / args.subjects
    print(
        f"\n| rule | jobs ({args.subjects}) | sum s | max s | peak RSS MB, own "
        f"process | jobs ({args.project}) | core-hours ({args.project}) |"
    )
    print("|---|---|---|---|---|---|---|")
    total = 0.0
    for rule in sorted(set(timing) | set(memory)):
        seconds = [s for s, _ in timing.get(rule, [])]
        rss = max((m for _, m in memory.get(rule, [])), default=math.nan)
        per_subject = rule in PER_SUBJECT or rule == "heldout_subjects"
        jobs = len(seconds)
        projected_jobs = math.ceil(jobs * scale) if per_subject else jobs
        # per-subject work scales with the subjects; the group fits' cost with
        # the subjects too (a generous linear extrapolation of their sum)
        hours = sum(seconds) * scale / 3600
        if rule != "synthetic_subject":
            total += hours
        print(
            f"| `{rule}` | {jobs} | {sum(seconds, 0.0):.1f} | "
            f"{max(seconds, default=0.0):.1f} | {rss:.0f} | {projected_jobs} | "
            f"{hours:.2f} |"
        )
    print(
        f"\nprojected core-hours for {args.project} subjects (generation aside): "
        f"{total:.1f}"
    )


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
