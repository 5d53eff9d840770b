"""A workflow killed with SIGKILL leaves nothing a rerun would trust.

The synthetic workflow (two short subjects, ``--cores 1``) is started in its own
process group and the whole group is killed with SIGKILL once a job of the stage
under test has logged that it started: during the first extraction
(``extract_timeseries``) and during the group fit (``group_sparse_covariance``).
Then:

- every file present under a final name is byte-identical to the same file of
  an uninterrupted run (outputs are written to ``.<name>.XXXX.tmp...`` and
  renamed when complete); only such hidden temporary files may differ;
- Snakemake has marked the killed job's outputs as incomplete
  (``.snakemake/incomplete/``);
- after ``snakemake --unlock`` (the killed run's lock is left behind), a rerun
  with ``--rerun-incomplete`` completes the workflow, and every output is
  byte-identical to the uninterrupted run's.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import output_files

pytestmark = pytest.mark.slow

ROOT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"
# 400 volumes: an extraction takes about a second even on a fast machine, so
# the kill lands inside it (at 100 volumes it took 0.3 s and could finish first).
SETTINGS = {"n_subjects": 2, "synthetic": {"n_volumes": 400}}


def final_files(folder: Path) -> dict[str, bytes]:
    """Files under a final name in results/ and resources/, with their bytes."""
    return {
        str(path): (folder / path).read_bytes()
        for path in output_files(folder)
        if not path.name.startswith(".")
    }


def temporary_files(folder: Path) -> list[str]:
    """Temporary files of interrupted atomic writes (``.<name>.XXXX.tmp...``)."""
    return sorted(
        str(path.relative_to(folder))
        for sub in ("results", "resources")
        for path in (folder / sub).rglob(".*")
        if path.is_file() and ".tmp" in path.name
    )


def incomplete_outputs(folder: Path) -> set[str]:
    """Outputs Snakemake marked incomplete (names of .snakemake/incomplete/*)."""
    marks = folder / ".snakemake" / "incomplete"
    names = set()
    for mark in marks.rglob("*") if marks.is_dir() else []:
        if mark.is_file():
            try:
                names.add(base64.urlsafe_b64decode(mark.name).decode())
            except ValueError:
                names.add(mark.name)
    return names


def write_config(folder: Path) -> Path:
    config = folder / "test.yaml"
    config.write_text(yaml.safe_dump(SETTINGS))
    return config


@pytest.fixture(scope="module")
def reference(tmp_path_factory, run_snakemake) -> dict[str, bytes]:
    """The outputs of an uninterrupted run."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    config = write_config(folder)
    result = run_snakemake(
        "--configfile", ROOT_CONFIG, config, "--cores", "2", cwd=folder, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return final_files(folder)


def kill_when_started(command: list[str], folder: Path, log: Path) -> str:
    """Run ``command``; SIGKILL its process group once ``log`` says "started".

    Returns the log's text at the time of the kill.
    """
    with open(folder / "killed_run.txt", "w") as out:
        process = subprocess.Popen(
            command, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 600
        try:
            while ": started" not in (log.read_text() if log.is_file() else ""):
                assert process.poll() is None, (folder / "killed_run.txt").read_text()
                assert time.monotonic() < deadline, "the job never started"
                time.sleep(0.01)
            time.sleep(0.1)  # inside the job (it takes about a second)
            text = log.read_text()
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # nothing of the group survives (jobs included) once the kernel is done
    deadline = time.monotonic() + 10
    while _group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group_members(process.pid) == []
    return text


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: split after the command's last ")"
        fields = stat.rsplit(")", 1)[-1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


@pytest.mark.parametrize(
    ("rule", "log", "outputs"),
    [
        (
            "extract_timeseries",
            "results/logs/extract_timeseries/01.log",
            ["results/sub-01/func/sub-01_atlas-synthetic_timeseries.tsv"],
        ),
        (
            "group_sparse_covariance",
            "results/logs/group_sparse_covariance/atlas-synthetic.log",
            ["results/group/atlas-synthetic_desc-groupsparse_connectome.npz"],
        ),
    ],
    ids=["during-extraction", "during-group-fit"],
)
def test_sigkill_then_rerun_gives_the_uninterrupted_bytes(
    rule, log, outputs, reference, tmp_path, snakemake_cmd, run_snakemake
):
    config = write_config(tmp_path)
    args = ("--configfile", ROOT_CONFIG, config)
    command = snakemake_cmd("--directory", tmp_path, *args, "--cores", "1")
    text = kill_when_started(command, tmp_path, tmp_path / log)
    assert "done in" not in text, f"{rule} finished before the kill"

    # No final name holds anything but the uninterrupted run's bytes.
    partial = final_files(tmp_path)
    for name in outputs:
        assert name not in partial
    differing = [name for name in partial if partial[name] != reference.get(name)]
    assert differing == []
    assert all(".tmp" in Path(name).name for name in temporary_files(tmp_path))
    # Snakemake knows the killed job's outputs are incomplete.
    marked = incomplete_outputs(tmp_path)
    assert any(name.endswith(outputs[0]) for name in marked), marked

    unlock = run_snakemake(*args, "--unlock", cwd=tmp_path)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    rerun = run_snakemake(
        *args, "--cores", "2", "--rerun-incomplete", cwd=tmp_path, timeout=900
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = final_files(tmp_path)
    assert after.keys() == reference.keys()
    assert [name for name in after if after[name] != reference[name]] == []
    assert incomplete_outputs(tmp_path) == set()
