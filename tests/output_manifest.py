"""SHA-256 of every file three reference runs write (a refactor must change none).

    python -m tests.output_manifest manifest.json          # write
    python -m tests.output_manifest manifest.json --check  # compare with it

The runs, each in a fresh temporary folder with this checkout's workflow: the
default synthetic run (``config/config.yaml`` as shipped), a ``dataset: sheet``
run on the synthetic files, and a ``dataset: fmriprep`` run (``scrubbing``) of the
tests' generated fMRIPrep tree. Files under ``results/`` and ``resources/`` count,
the run records aside (``results/logs``, ``results/benchmarks``: timings).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tests.fmriprep_tree import make_fmriprep_tree
from tests.helpers import output_files

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def _snakemake(folder: Path, *args: str) -> None:
    command = [
        str(SNAKEMAKE),
        "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(folder),
        "--cores", "2",
        "--force-use-threads",
        "--configfile", str(ROOT / "config/config.yaml"),
        *args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"snakemake failed in {folder}:\n{result.stderr[-3000:]}")


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(path): hashlib.sha256((folder / path).read_bytes()).hexdigest()
        for path in output_files(folder)
    }


def default_run(folder: Path) -> dict[str, str]:
    _snakemake(folder)
    return _hashes(folder)


def sheet_run(folder: Path) -> dict[str, str]:
    synthetic = "resources/synthetic"
    subjects = ("01", "02", "03", "04")
    inputs = [f"{synthetic}/atlas_maps.nii.gz", f"{synthetic}/atlas_labels.csv"]
    for s in subjects:
        inputs += [
            f"{synthetic}/sub-{s}_bold.nii.gz",
            f"{synthetic}/sub-{s}_desc-confounds_timeseries.tsv",
        ]
    _snakemake(folder, "--config", "n_subjects=4", "--", *inputs)
    rows = "".join(
        f"{s}\t{synthetic}/sub-{s}_bold.nii.gz\t"
        f"{synthetic}/sub-{s}_desc-confounds_timeseries.tsv\t2.5\n"
        for s in subjects
    )
    (folder / "sheet.tsv").write_text("subject\tfunc\tconfounds\tt_r\n" + rows)
    config = folder / "sheet.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "dataset": "sheet",
                "subjects_sheet": "sheet.tsv",
                "atlas_maps": inputs[0],
                "atlas_labels": inputs[1],
            }
        )
    )
    _snakemake(folder, "--configfile", str(ROOT / "config/config.yaml"), str(config))
    return {
        path: digest
        for path, digest in _hashes(folder).items()
        if path.startswith("results/")
    }


def fmriprep_run(folder: Path) -> dict[str, str]:
    tree = make_fmriprep_tree(folder, n_volumes=100)
    config = folder / "fmriprep.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "dataset": "fmriprep",
                "fmriprep_dir": "fmriprep",
                "atlas_maps": "atlas_maps.nii.gz",
                "atlas_labels": "atlas_labels.csv",
                "atlas_name": "test",
                "denoise_strategy": "scrubbing",
            }
        )
    )
    assert tree.root == folder / "fmriprep"
    _snakemake(folder, "--configfile", str(ROOT / "config/config.yaml"), str(config))
    return _hashes(folder)


RUNS = {"default": default_run, "sheet": sheet_run, "fmriprep": fmriprep_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    manifest = {}
    for name, run in RUNS.items():
        with tempfile.TemporaryDirectory() as folder:
            manifest[name] = run(Path(folder))
        print(f"{name}: {len(manifest[name])} files", flush=True)
    if not args.check:
        args.manifest.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return
    expected = json.loads(args.manifest.read_text())
    differ = [
        f"{name}: {path}"
        for name in RUNS
        for path in sorted(set(expected[name]) | set(manifest[name]))
        if expected[name].get(path) != manifest[name].get(path)
    ]
    print("\n".join(differ) or "every file has the recorded bytes")
    raise SystemExit(1 if differ else 0)


if __name__ == "__main__":
    main()
