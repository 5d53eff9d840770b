"""Dataset adhd, run for real against a local mirror of the canonical hosts.

A server on 127.0.0.1 (tests/httpserver.py) serves tiny synthetic stand-ins for
the ADHD-40 archives and the MSDL zip under the real hosts' paths and member
names. The shipped ``config/adhd.yaml`` is used as is; only the two URLs (and the
number of subjects) are overridden on the command line, as a mirror user would.
The main run gets every file with one byte flipped at its first delivery: the
downloader must notice, fetch it again, and record only the true checksums.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
import zipfile

import numpy as np
import pandas as pd
import pytest

from sparseconn import fetch
from tests.conftest import ROOT, snakemake_command
from tests.httpserver import MSDL_PATH, NITRC_PATH, Fault, Mirror, adhd_mirror_files

pytestmark = pytest.mark.slow

SUBJECTS = fetch.adhd_subjects(3)


def mirror_config(mirror: Mirror, n_subjects: int) -> list[str]:
    """``--configfile config/adhd.yaml --config ...`` pointing at ``mirror``."""
    adhd = (
        f'{{base_url: "{mirror.url(NITRC_PATH)}/", '
        f'atlas_url: "{mirror.url(MSDL_PATH)}"}}'
    )
    return [
        "--configfile",
        str(ROOT / "config" / "adhd.yaml"),
        "--config",
        f"adhd={adhd}",
        f"n_subjects={n_subjects}",
    ]


@pytest.fixture(scope="module")
def mirror_files(tmp_path_factory) -> dict[str, bytes]:
    return adhd_mirror_files(tmp_path_factory.mktemp("mirror"), n_subjects=3)


@pytest.fixture(scope="module")
def adhd_run(mirror_files, tmp_path_factory, run_snakemake):
    folder = tmp_path_factory.mktemp("adhd")
    with Mirror(dict(mirror_files)) as mirror:
        for path, data in mirror_files.items():  # each first delivery is corrupt
            mirror.faults[path].append(Fault("corrupt", after=len(data) // 2))
        result = run_snakemake(
            *mirror_config(mirror, 3), "--cores", "2", cwd=folder, timeout=900
        )
        assert result.returncode == 0, result.stderr[-4000:]
        again = run_snakemake(*mirror_config(mirror, 3), "-n", cwd=folder)
        yield folder, mirror, result, again


def member(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return tar.extractfile(name).read()


def zip_member(archive: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return zf.read(name)


def test_downloads_land_under_resources(adhd_run, mirror_files):
    folder, _, _, _ = adhd_run
    adhd = folder / "resources" / "adhd"
    for subject in SUBJECTS:
        archive = mirror_files[f"{NITRC_PATH}/{fetch.adhd_subject_archive(subject)}"]
        members = fetch.adhd_subject_members(subject)
        func = adhd / subject / f"{subject}_rest_tshift_RPI_voreg_mni.nii.gz"
        assert func.read_bytes() == member(archive, members["func"])
        confounds = adhd / subject / f"{subject}_regressors.csv"
        assert confounds.read_bytes() == member(archive, members["confounds"])
    atlas = mirror_files[MSDL_PATH]
    assert (adhd / "msdl" / "msdl_rois.nii").read_bytes() == zip_member(
        atlas, fetch.MSDL_MAPS_MEMBER
    )
    assert (adhd / "msdl" / "msdl_rois_labels.csv").read_bytes() == zip_member(
        atlas, fetch.MSDL_LABELS_MEMBER
    )
    phenotypes = mirror_files[f"{NITRC_PATH}/{fetch.ADHD_PHENOTYPES_ARCHIVE}"]
    assert (adhd / fetch.ADHD_PHENOTYPES_MEMBER).read_bytes() == member(
        phenotypes, fetch.ADHD_PHENOTYPES_MEMBER
    )
    # archives are deleted once extracted; no partial file is left
    assert sorted(p.name for p in (adhd / "downloads").iterdir()) == []


def test_checksums_are_recorded_in_the_lock_file(adhd_run, mirror_files):
    folder, _, _, _ = adhd_run
    lock = json.loads((folder / "resources/adhd/checksums.lock.json").read_text())
    expected = {
        path.rsplit("/", 1)[1]: hashlib.sha256(data).hexdigest()
        for path, data in mirror_files.items()
    }
    assert {key: entry["sha256"] for key, entry in lock["files"].items()} == expected


def test_results_of_the_msdl_atlas(adhd_run):
    folder, _, _, _ = adhd_run
    results = folder / "results"
    for subject in SUBJECTS:
        func = results / f"sub-{subject}" / "func"
        name = f"sub-{subject}_atlas-MSDL_timeseries"
        series = pd.read_csv(func / f"{name}.tsv", sep="\t")
        assert series.shape == (60, 6)
        sidecar = json.loads((func / f"{name}.json").read_text())
        assert sidecar["RepetitionTime"] == 2.0  # from the image header
        assert sidecar["Atlas"] == "MSDL"
        # the subject's regressors file is regressed out, after the high-variance ones
        assert any(path.endswith("_regressors.csv") for path in sidecar["Confounds"])
    group = results / "group" / "atlas-MSDL_desc-groupsparse_connectome.npz"
    with np.load(group) as fit:
        assert list(fit["subjects"]) == SUBJECTS  # ids kept as text: leading zeros
        assert fit["precisions"].shape == (3, 6, 6)


def test_second_run_downloads_nothing(adhd_run):
    _, _, _, again = adhd_run
    assert again.returncode == 0, again.stderr
    # (only the download rules: other rules rerun if their code is edited meanwhile)
    assert "fetch_" not in again.stdout + again.stderr


def test_each_corrupt_file_is_downloaded_again_once(adhd_run, mirror_files):
    folder, mirror, result, _ = adhd_run
    for path in mirror_files:
        first, second = mirror.requests(path)
        assert first.status == second.status == 200
        assert second.range is None  # the corrupt bytes were not kept
    # within the job (its log says why), not by a Snakemake restart
    log = (folder / "results/logs/fetch_subject" / f"{SUBJECTS[0]}.log").read_text()
    assert "corrupt download: broken archive" in log
    assert "sparseconn: error" not in result.stderr
    assert "Trying to restart job" not in result.stderr


def test_unknown_mirror_path_stops_with_one_clear_line(mirror_files, tmp_path):
    """A 404 cannot go away: reported once, even with --retries (e.g. a profile's)."""
    with Mirror(dict(mirror_files)) as mirror:
        args = mirror_config(mirror, 1)
        args[args.index("--config") + 1] = (
            f'adhd={{base_url: "{mirror.url("nowhere")}/", '
            f'atlas_url: "{mirror.url(MSDL_PATH)}"}}'
        )
        result = subprocess.run(
            snakemake_command(
                "--directory",
                tmp_path,
                *args,
                "--until",
                "fetch_subject",
                "-c1",
                "--retries",
                "2",
            ),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode != 0
    url = mirror.url(f"nowhere/{fetch.adhd_subject_archive(SUBJECTS[0])}")
    line = f"sparseconn: error: {url}: HTTP 404 for URL {url}"
    assert result.stderr.count(line) == 1, result.stderr
    assert len(mirror.log) == 1  # no retry of any kind
    assert not (tmp_path / "resources" / "adhd" / SUBJECTS[0]).exists()


def test_broken_and_silent_hosts_fail_once_each_and_record_nothing(
    mirror_files, tmp_path
):
    """Always-corrupt phenotypes, an atlas host that never answers (download.*)."""
    phenotypes = f"{NITRC_PATH}/{fetch.ADHD_PHENOTYPES_ARCHIVE}"
    size = len(mirror_files[phenotypes])
    with Mirror(dict(mirror_files)) as mirror:
        mirror.faults[phenotypes] += [Fault("corrupt", after=size // 2)] * 10
        mirror.faults[MSDL_PATH] += [Fault("hang", seconds=600)] * 10
        result = subprocess.run(
            snakemake_command(
                "--directory",
                tmp_path,
                *mirror_config(mirror, 1),
                "download_timeout=1",
                "download_attempts=2",
                "--until",
                "fetch_phenotypes",
                "fetch_atlas",
                "--keep-going",
                "-c2",
            ),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2, result.stderr
    corrupt = next(line for line in errors if mirror.url(phenotypes) in line)
    assert "corrupt download: broken archive" in corrupt
    silent = next(line for line in errors if mirror.url(MSDL_PATH) in line)
    assert silent.endswith(
        "download failed after 2 attempts: no answer within 1 s (download_timeout)"
    )
    adhd = tmp_path / "resources" / "adhd"
    assert not (adhd / fetch.ADHD_PHENOTYPES_MEMBER).exists()
    assert not (adhd / "msdl").exists() or not any((adhd / "msdl").iterdir())
    assert not (adhd / "downloads" / "adhd40_metadata.tgz").exists()
    assert not (adhd / "checksums.lock.json").exists()


def test_sigkill_mid_download_then_rerun_resumes(mirror_files, tmp_path):
    subject = SUBJECTS[0]
    path = f"{NITRC_PATH}/{fetch.adhd_subject_archive(subject)}"
    size = len(mirror_files[path])
    part = tmp_path / "resources/adhd/downloads" / f"adhd40_{subject}.tgz.part"
    with Mirror(dict(mirror_files)) as mirror:
        # the first request trickles: about 4 s for the whole archive
        mirror.faults[path].append(Fault("throttle", rate=size / 4))
        command = snakemake_command(
            "--directory",
            tmp_path,
            *mirror_config(mirror, 1),
            "--until",
            "fetch_subject",
            "--cores",
            "1",
        )
        job = subprocess.Popen(
            command,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while not (part.exists() and part.stat().st_size > size // 4):
                assert time.monotonic() < deadline, "the download never started"
                assert job.poll() is None, "the job ended before it was killed"
                time.sleep(0.05)
        finally:
            os.killpg(job.pid, signal.SIGKILL)  # the job's own process group
            job.wait()
        kept = part.stat().st_size
        assert 0 < kept < size
        # A killed Snakemake leaves its lock behind: --unlock, then run again.
        for extra in (["--unlock"], []):
            rerun = subprocess.run(
                [*command, *extra],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert rerun.returncode == 0, rerun.stderr[-3000:]
        first, second = mirror.requests(path)
    assert first.range is None
    assert second.range == f"bytes={kept}-" and second.status == 206
    assert second.sent == size - kept  # the kept bytes were not sent again
    func = tmp_path / "resources/adhd" / subject
    func = func / f"{subject}_rest_tshift_RPI_voreg_mni.nii.gz"
    members = fetch.adhd_subject_members(subject)
    assert func.read_bytes() == member(mirror_files[path], members["func"])
    assert not part.exists()


def test_sheet_urls_are_downloaded_by_the_same_downloader(mirror_files, tmp_path):
    """dataset sheet: http(s) cells are fetched into resources/sheet/, file:// read."""
    archive = mirror_files[f"{NITRC_PATH}/{fetch.adhd_subject_archive(SUBJECTS[0])}"]
    members = fetch.adhd_subject_members(SUBJECTS[0])
    func, confounds = (member(archive, members[key]) for key in ("func", "confounds"))
    local = tmp_path / "local_bold.nii.gz"
    local.write_bytes(func)
    atlas = tmp_path / "maps.nii.gz"
    atlas.write_bytes(func)  # only read by later rules, not by this test
    files = {"data/s01_bold.nii.gz": func, "data/s01_regressors.csv": confounds}
    with Mirror(files) as mirror:
        for path, data in files.items():  # each first delivery is corrupt
            mirror.faults[path].append(Fault("corrupt", after=len(data) // 2))
        sheet = tmp_path / "subjects.tsv"
        sheet.write_text(
            "subject\tfunc\tconfounds\n"
            f"01\t{mirror.url('data/s01_bold.nii.gz')}\t"
            f"{mirror.url('data/s01_regressors.csv')}\n"
            f"02\t{local.as_uri()}\t\n"
        )
        result = subprocess.run(
            snakemake_command(
                "--directory",
                tmp_path,
                "--configfile",
                ROOT / "config" / "config.yaml",
                "--config",
                "dataset=sheet",
                f"subjects_sheet={sheet}",
                f"atlas_maps={atlas}",
                "--until",
                "fetch_sheet_file",
                "-c2",
            ),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    fetched = tmp_path / "resources" / "sheet" / "01"
    assert (fetched / "func" / "s01_bold.nii.gz").read_bytes() == func
    assert (fetched / "confounds" / "s01_regressors.csv").read_bytes() == confounds
    assert not (tmp_path / "resources" / "sheet" / "02").exists()  # file:// is read
    lock = json.loads((tmp_path / "resources/sheet/checksums.lock.json").read_text())
    assert {key: entry["sha256"] for key, entry in lock["files"].items()} == {
        mirror.url(path): hashlib.sha256(data).hexdigest()
        for path, data in files.items()
    }


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            ["n_subjects=41"],
            "the ADHD dataset has 40 subjects; n_subjects 41 is out of range",
        ),
        (
            ['adhd={checksums: {MSDL_rois.zip: "md5:12"}}'],
            "adhd.checksums.MSDL_rois.zip: 'md5:12' does not match",
        ),
    ],
)
def test_bad_adhd_config_is_one_line(run_snakemake, tmp_path, settings, expected):
    result = run_snakemake(
        "-n",
        "--configfile",
        ROOT / "config" / "config.yaml",
        "--config",
        "dataset=adhd",
        *settings,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], result.stderr


def test_dataset_adhd_plans_the_downloads(run_snakemake, tmp_path):
    """`--config dataset=adhd` alone takes the hosts from config/adhd.yaml."""
    result = run_snakemake(
        "-n",
        "--configfile",
        ROOT / "config" / "config.yaml",
        "--config",
        "dataset=adhd",
        "n_subjects=2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "https://www.nitrc.org/frs/download.php/7783/adhd40_0010064.tgz" in out
    assert "https://team.inria.fr/parietal/files/2015/01/MSDL_rois.zip" in out
    assert "sub-0010042_atlas-MSDL_timeseries.tsv" in out
