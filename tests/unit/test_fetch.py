"""Downloads and archive extraction against a real HTTP server on 127.0.0.1.

Every fault ends either with the right bytes under the final name (resumed with a
``Range`` request where the server allows it: the request log shows what was
re-sent) or with one clear `InputError` and nothing under the final name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import re
import socket
import tarfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sparseconn import fetch
from sparseconn.errors import InputError
from tests.httpserver import Fault, Mirror, tar_bytes, zip_bytes

PAYLOAD = bytes(range(256)) * 1024  # 256 KiB: several network chunks
NAME = "frs/download.php/7782/adhd40_0010042.tgz"
FAST = {"backoff": 0.01, "timeout": 5.0}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def mirror():
    with Mirror({NAME: PAYLOAD}) as server:
        yield server


def no_leftovers(dest: Path) -> None:
    assert not dest.exists()
    assert not dest.with_name(dest.name + ".part").exists()


# ------------------------------------------------------------------ happy paths


def test_download_writes_the_bytes_and_records_the_lock(mirror, tmp_path):
    dest, lock = tmp_path / "a.tgz", tmp_path / "checksums.lock.json"
    fetch.download(mirror.url(NAME), dest, lock_file=lock, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("a.tgz.part").exists()
    entry = {"sha256": sha256(PAYLOAD), "size": len(PAYLOAD), "url": mirror.url(NAME)}
    assert json.loads(lock.read_text()) == {"files": {"a.tgz": entry}}
    # deterministic: sorted keys, indented, newline-terminated
    assert (
        lock.read_text()
        == json.dumps({"files": {"a.tgz": entry}}, indent=2, sort_keys=True) + "\n"
    )


def test_existing_verified_file_is_kept_without_a_request(mirror, tmp_path):
    dest = tmp_path / "a.tgz"
    dest.write_bytes(PAYLOAD)
    fetch.download(mirror.url(NAME), dest, sha256=sha256(PAYLOAD), **FAST)
    assert mirror.log == []


def test_known_md5_is_verified(mirror, tmp_path):
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    fetch.download(mirror.url(NAME), tmp_path / "a.tgz", md5=md5, **FAST)
    assert (tmp_path / "a.tgz").read_bytes() == PAYLOAD


def test_file_url(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "copy.bin"
    fetch.download(source.as_uri(), dest, sha256=sha256(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD


def test_missing_file_url(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        fetch.download((tmp_path / "nope.bin").as_uri(), tmp_path / "x.bin")
    no_leftovers(tmp_path / "x.bin")


# ----------------------------------------------------------------------- faults


def test_dropped_connection_is_resumed_with_range(mirror, tmp_path):
    dest = tmp_path / "a.tgz"
    mirror.faults[NAME].append(Fault("drop", after=100_000))
    fetch.download(mirror.url(NAME), dest, sha256=sha256(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD
    first, second = mirror.requests(NAME)
    assert first.range is None and first.sent == 100_000
    assert second.range == "bytes=100000-" and second.status == 206
    assert second.if_range is not None  # the ETag of the first answer
    assert second.sent == len(PAYLOAD) - 100_000  # nothing sent twice


def test_corrupted_bytes_fail_the_checksum(mirror, tmp_path):
    dest = tmp_path / "a.tgz"
    mirror.faults[NAME].append(Fault("corrupt", after=1234))
    with pytest.raises(InputError) as error:
        fetch.download(mirror.url(NAME), dest, sha256=sha256(PAYLOAD), **FAST)
    message = str(error.value)
    corrupted = bytearray(PAYLOAD)
    corrupted[1234] ^= 0xFF
    assert message.startswith(f"{dest}.part: checksum mismatch for {mirror.url(NAME)}")
    assert f"expected sha256 {sha256(PAYLOAD)}, got {sha256(bytes(corrupted))}" in (
        message
    )
    assert "\n" not in message
    no_leftovers(dest)


def test_changed_bytes_fail_against_the_lock_file(mirror, tmp_path):
    lock = tmp_path / "checksums.lock.json"
    fetch.download(mirror.url(NAME), tmp_path / "a.tgz", lock_file=lock, **FAST)
    (tmp_path / "a.tgz").unlink()  # an archive deleted after extraction
    mirror.faults[NAME].append(Fault("corrupt", after=0))
    with pytest.raises(InputError, match="checksum mismatch") as error:
        fetch.download(mirror.url(NAME), tmp_path / "a.tgz", lock_file=lock, **FAST)
    assert f"expected from {lock}" in str(error.value)
    no_leftovers(tmp_path / "a.tgz")
    # the lock still holds the first download's checksum
    assert fetch.read_lock(lock)["a.tgz"]["sha256"] == sha256(PAYLOAD)


def test_size_mismatch(mirror, tmp_path):
    with pytest.raises(InputError, match=r"size mismatch .* expected 5 bytes, got"):
        fetch.download(mirror.url(NAME), tmp_path / "a.tgz", size=5, **FAST)
    no_leftovers(tmp_path / "a.tgz")


def test_http_404_is_final(mirror, tmp_path):
    url = mirror.url("frs/download.php/9999/nope.tgz")
    with pytest.raises(InputError) as error:
        fetch.download(url, tmp_path / "nope.tgz", **FAST)
    assert str(error.value).startswith(f"{url}: HTTP 404 for URL {url}")
    assert len(mirror.log) == 1  # not retried
    no_leftovers(tmp_path / "nope.tgz")


def test_http_500_then_success(mirror, tmp_path):
    mirror.faults[NAME] += [Fault("status", status=500), Fault("status", status=503)]
    fetch.download(mirror.url(NAME), tmp_path / "a.tgz", **FAST)
    assert (tmp_path / "a.tgz").read_bytes() == PAYLOAD
    assert [r.status for r in mirror.requests(NAME)] == [500, 503, 200]


def test_http_500_forever_gives_up(mirror, tmp_path):
    mirror.faults[NAME] += [Fault("status", status=500)] * 3
    with pytest.raises(InputError, match=r"download failed after 3 attempts: HTTP 500"):
        fetch.download(mirror.url(NAME), tmp_path / "a.tgz", attempts=3, **FAST)
    no_leftovers(tmp_path / "a.tgz")


def test_slow_response_times_out_and_resumes(mirror, tmp_path):
    mirror.faults[NAME].append(Fault("stall", after=70_000, seconds=2.0))
    dest = tmp_path / "a.tgz"
    fetch.download(mirror.url(NAME), dest, backoff=0.01, timeout=0.3)
    assert dest.read_bytes() == PAYLOAD
    second = mirror.requests(NAME)[1]
    # resumed where the client's file ended: nothing is sent twice
    start = int(second.range.removeprefix("bytes=").removesuffix("-"))
    assert 0 < start <= 70_000 and second.status == 206
    assert start + second.sent == len(PAYLOAD)


def test_server_without_range_support_restarts_cleanly(tmp_path):
    with Mirror({NAME: PAYLOAD}, ranges=False) as mirror:
        mirror.faults[NAME].append(Fault("drop", after=100_000))
        dest = tmp_path / "a.tgz"
        fetch.download(mirror.url(NAME), dest, sha256=sha256(PAYLOAD), **FAST)
        assert dest.read_bytes() == PAYLOAD
        _, second = mirror.requests(NAME)
        assert second.range == "bytes=100000-"  # asked ...
        assert second.status == 200 and second.sent == len(PAYLOAD)  # ... got all


def test_complete_part_file_is_not_downloaded_again(mirror, tmp_path):
    dest = tmp_path / "a.tgz"
    dest.with_name("a.tgz.part").write_bytes(PAYLOAD)
    fetch.download(mirror.url(NAME), dest, sha256=sha256(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD
    (request,) = mirror.requests(NAME)
    assert request.status == 416 and request.sent == 0


def test_changed_file_on_the_server_is_not_spliced(mirror, tmp_path):
    dest = tmp_path / "a.tgz"
    dest.with_name("a.tgz.part").write_bytes(b"old version, half downloaded")
    dest.with_name("a.tgz.part.json").write_text('{"validator": "\\"old-etag\\""}')
    fetch.download(mirror.url(NAME), dest, sha256=sha256(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD
    (request,) = mirror.requests(NAME)
    assert request.if_range == '"old-etag"' and request.status == 200


def test_unreachable_host(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/frs/download.php/7782/adhd40_0010042.tgz"
    with pytest.raises(InputError) as error:
        fetch.download(url, tmp_path / "a.tgz", attempts=2, **FAST)
    assert str(error.value).startswith(
        f"{url}: cannot reach 127.0.0.1:{port}: use dataset: synthetic, "
        "or set adhd.base_url to a mirror"
    )
    no_leftovers(tmp_path / "a.tgz")


def test_unknown_host_fails_at_once(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    url = "https://www.nitrc.org/frs/download.php/7782/adhd40_0010042.tgz"
    with pytest.raises(InputError, match=r"cannot reach www\.nitrc\.org: use dataset"):
        fetch.download(url, tmp_path / "a.tgz", attempts=5, backoff=10.0)


@pytest.mark.parametrize(
    "value", ["md5:abc", "sha1:" + "0" * 40, "sha256:" + "g" * 64, "deadbeef"]
)
def test_bad_checksum_spelling(value):
    with pytest.raises(ValueError, match="is not 'md5:<32 hex digits>'"):
        fetch.parse_checksum(value)


# --------------------------------------------------------------------- archives


def test_extract_members_from_tar_and_zip(tmp_path):
    image = nifti_bytes(True)
    members = {"data/01/a.nii.gz": image, "data/01/b.csv": b"x\ty\n"}
    for name, data in (("a.tgz", tar_bytes(members)), ("a.zip", zip_bytes(members))):
        archive = tmp_path / name
        archive.write_bytes(data)
        out = tmp_path / name.replace(".", "_")
        fetch.extract_members(
            archive,
            {"./data/01/a.nii.gz": out / "a.nii.gz", "data/01/b.csv": out / "b.csv"},
        )
        assert (out / "a.nii.gz").read_bytes() == image
        assert (out / "b.csv").read_bytes() == b"x\ty\n"
        assert sorted(p.name for p in out.iterdir()) == ["a.nii.gz", "b.csv"]


def test_missing_member(tmp_path):
    archive = tmp_path / "a.tgz"
    archive.write_bytes(tar_bytes({"data/x.csv": b"1"}))
    with pytest.raises(InputError, match=r"no member 'data/y.csv' \(members: data/x"):
        fetch.extract_members(archive, {"data/y.csv": tmp_path / "y.csv"})


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("evil", ["../evil.csv", "data/../../evil.csv", "/etc/evil"])
def test_archive_with_unsafe_member_is_refused(tmp_path, kind, evil):
    members = {"data/a.csv": b"1", evil: b"pwned"}
    archive = tmp_path / f"a.{kind}"
    archive.write_bytes(tar_bytes(members) if kind == "tar" else zip_bytes(members))
    dest = tmp_path / "out" / "a.csv"
    with pytest.raises(InputError, match=re.escape(f"unsafe member '{evil}'")):
        fetch.extract_members(archive, {"data/a.csv": dest})
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.csv").exists()


def test_tar_link_pointing_outside_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo("data/a.csv")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tar.addfile(link)
    archive = tmp_path / "a.tgz"
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(InputError, match=r"unsafe member 'data/a\.csv'"):
        fetch.extract_members(archive, {"data/a.csv": tmp_path / "a.csv"})
    assert not (tmp_path / "a.csv").exists()


def test_zip_symlink_pointing_outside_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("data/a.csv")
        info.external_attr = (0o120777 << 16) | 0
        archive.writestr(info, "../../etc/passwd")
    path = tmp_path / "a.zip"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(InputError, match=r"link to '\.\./\.\./etc/passwd' outside"):
        fetch.extract_members(path, {"data/a.csv": tmp_path / "a.csv"})


def test_corrupt_archive(tmp_path):
    archive = tmp_path / "a.tgz"
    archive.write_bytes(tar_bytes({"data/a.csv": b"1" * 100_000})[:-200])
    with pytest.raises(InputError, match=f"{archive}: "):
        fetch.extract_members(archive, {"data/a.csv": tmp_path / "a.csv"})
    assert not (tmp_path / "a.csv").exists()


def test_fetch_archive_members_downloads_extracts_and_deletes(tmp_path):
    archive_bytes = tar_bytes({"data/0010042/x.csv": b"a\tb\n1\t2\n"})
    with Mirror({NAME: archive_bytes}) as mirror:
        archive = tmp_path / "downloads" / "adhd40_0010042.tgz"
        lock = tmp_path / "checksums.lock.json"
        fetch.fetch_archive_members(
            mirror.url(NAME),
            archive,
            {"data/0010042/x.csv": tmp_path / "x.csv"},
            lock_file=lock,
            **FAST,
        )
    assert (tmp_path / "x.csv").read_bytes() == b"a\tb\n1\t2\n"
    assert not archive.exists()
    assert set(fetch.read_lock(lock)) == {"adhd40_0010042.tgz"}


# ------------------------------------------------------------------ the layout


def test_adhd_layout():
    assert len(fetch.ADHD_SUBJECTS) == len(set(fetch.ADHD_SUBJECTS)) == 40
    assert list(fetch.ADHD_SUBJECTS) == sorted(fetch.ADHD_SUBJECTS)
    assert all(s.isdigit() and len(s) == 7 for s in fetch.ADHD_SUBJECTS)
    assert fetch.adhd_subjects(2) == ["0010042", "0010064"]
    assert fetch.adhd_subject_archive("0010042") == "7782/adhd40_0010042.tgz"
    assert fetch.adhd_subject_archive("9750701") == "7821/adhd40_9750701.tgz"
    assert fetch.adhd_subject_members("0010042") == {
        "func": "data/0010042/0010042_rest_tshift_RPI_voreg_mni.nii.gz",
        "confounds": "data/0010042/0010042_regressors.csv",
    }
    with pytest.raises(ValueError, match="has 40 subjects"):
        fetch.adhd_subjects(41)


# ------------------------------------------- corrupt bytes, hangs, final errors


def nifti_bytes(gzipped: bool) -> bytes:
    """A small 4D NIfTI image (random data: compresses poorly, so a flipped byte
    lands in the data)."""
    data = np.random.default_rng(0).normal(size=(6, 7, 5, 8)).astype(np.float32)
    image = nib.Nifti1Image(data, np.eye(4))
    raw = image.to_bytes()
    return gzip.compress(raw, mtime=0) if gzipped else raw


FUNC = "data/0010042/0010042_rest_tshift_RPI_voreg_mni.nii.gz"
CONFOUNDS = "data/0010042/0010042_regressors.csv"
CSV = b"".join(b"%d\t%d.5\t%d\n" % (i, i, -i) for i in range(2000))


def archive_cases() -> dict[str, tuple[bytes, dict[str, bytes]]]:
    """Archive kind -> (archive bytes, its members) of a subject and of the atlas."""
    subject = {FUNC: nifti_bytes(True), CONFOUNDS: b"a\tb\tc\n" + CSV}
    atlas = {
        "MSDL_rois/msdl_rois.nii": nifti_bytes(False),
        "MSDL_rois/msdl_rois_labels.csv": b"x,y,z,name\n1,2,3,Aud\n",
    }
    return {"tgz": (tar_bytes(subject), subject), "zip": (zip_bytes(atlas), atlas)}


def fetch_case(mirror: Mirror, kind: str, folder: Path, **options):
    """Run fetch_archive_members of an archive case; its destinations."""
    _, members = archive_cases()[kind]
    dests = {name: folder / "out" / Path(name).name for name in members}
    fetch.fetch_archive_members(
        mirror.url(f"{NAME}.{kind}"),
        folder / "downloads" / f"a.{kind}",
        dests,
        lock_file=folder / "checksums.lock.json",
        **{**FAST, **options},
    )
    return dests


@pytest.mark.parametrize("kind", ["tgz", "zip"])
def test_archive_corrupted_on_first_delivery_is_downloaded_again(tmp_path, kind):
    data, members = archive_cases()[kind]
    with Mirror({f"{NAME}.{kind}": data}) as mirror:
        mirror.faults[f"{NAME}.{kind}"].append(Fault("corrupt", after=len(data) // 2))
        dests = fetch_case(mirror, kind, tmp_path)
        _, second = mirror.requests(f"{NAME}.{kind}")
    for name, dest in dests.items():
        assert dest.read_bytes() == members[name]
    assert second.range is None and second.sent == len(data)  # from scratch
    lock = fetch.read_lock(tmp_path / "checksums.lock.json")
    assert lock[f"a.{kind}"]["sha256"] == sha256(data)
    assert list((tmp_path / "downloads").iterdir()) == []


@pytest.mark.parametrize(
    ("name", "data"),
    [("s01_bold.nii.gz", nifti_bytes(True)), ("s01_regressors.csv", CSV)],
)
def test_plain_file_corrupted_on_first_delivery_is_downloaded_again(
    tmp_path, name, data
):
    with Mirror({name: data}) as mirror:
        mirror.faults[name].append(Fault("corrupt", after=len(data) // 2))
        lock = tmp_path / "checksums.lock.json"
        dest = tmp_path / "sheet" / name
        fetch.fetch_file(mirror.url(name), dest, lock_file=lock, **FAST)
        assert len(mirror.requests(name)) == 2
    assert dest.read_bytes() == data
    assert fetch.read_lock(lock)[name]["sha256"] == sha256(data)


@pytest.mark.parametrize("kind", ["tgz", "zip", "nii.gz", "csv"])
def test_server_that_keeps_corrupting_fails_and_records_nothing(tmp_path, kind):
    if kind in ("tgz", "zip"):
        data, _ = archive_cases()[kind]
    else:
        data = nifti_bytes(True) if kind == "nii.gz" else CSV
    path = f"{NAME}.{kind}"
    with Mirror({path: data}) as mirror:
        mirror.faults[path] += [Fault("corrupt", after=len(data) // 2)] * 10
        with pytest.raises(InputError) as error:
            if kind in ("tgz", "zip"):
                fetch_case(mirror, kind, tmp_path, attempts=3)
            else:
                fetch.fetch_file(
                    mirror.url(path),
                    tmp_path / "out" / f"file.{kind}",
                    lock_file=tmp_path / "checksums.lock.json",
                    attempts=3,
                    **FAST,
                )
        assert 2 <= len(mirror.requests(path)) <= 3
    message = str(error.value)
    assert message.startswith(f"{mirror.url(path)}: ") and "\n" not in message
    assert "corrupt" in message
    # nothing under a final name, no archive kept, nothing recorded
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "downloads").exists() or not any(
        (tmp_path / "downloads").iterdir()
    )
    assert not (tmp_path / "checksums.lock.json").exists()


def test_csv_with_nul_bytes_is_refused(tmp_path):
    data = b"Subject,site\n0010042,1\n\0\0\0\0,1\n"
    with Mirror({"pheno.csv": data}) as mirror:
        lock = tmp_path / "checksums.lock.json"
        with pytest.raises(InputError, match="NUL byte"):
            fetch.fetch_file(
                mirror.url("pheno.csv"), tmp_path / "pheno.csv", lock_file=lock, **FAST
            )
    no_leftovers(tmp_path / "pheno.csv")
    assert not lock.exists()


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("a.nii.gz", nifti_bytes(True)[:-100], "truncated"),
        ("a.nii.gz", nifti_bytes(True)[:-8] + b"\0" * 8, "CRC"),
        ("a.nii", nifti_bytes(False)[:-4], "4 bytes short"),
        ("a.nii", b"\0" * 400, "not a NIfTI"),
        ("a.csv", b"a,b\n1,2\n\xff\n", "not UTF-8"),
        ("a.tsv", b"a\tb\n1\t2\n1\t2\t3\n", "cannot parse"),
        ("a.csv", b"", "empty"),
    ],
)
def test_check_data_file_refuses_broken_files(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(fetch.CorruptDownload, match=problem):
        fetch.check_data_file(path)


def test_check_data_file_accepts_whole_files(tmp_path):
    for name, content in [
        ("a.nii.gz", nifti_bytes(True)),
        ("a.nii", nifti_bytes(False)),
        ("a.csv", b"x,y\n1,2\n"),
        ("a.tsv", CSV),
        ("a.bin", b"\0\xff"),  # unknown kind: not checked
    ]:
        (tmp_path / name).write_bytes(content)
        fetch.check_data_file(tmp_path / name)


def test_member_that_fails_its_check_in_an_uncompressed_tar(tmp_path):
    """A plain tar has no CRC: the extracted image itself is checked."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        content = nifti_bytes(True)[:-50]
        info = tarfile.TarInfo(FUNC)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    archive = tmp_path / "a.tar"
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(fetch.CorruptDownload, match="truncated"):
        fetch.extract_members(archive, {FUNC: tmp_path / "out" / "func.nii.gz"})
    assert not (tmp_path / "out" / "func.nii.gz").exists()
    assert list((tmp_path / "out").glob("*")) == []


def test_hanging_server_fails_within_the_timeout(tmp_path):
    with Mirror({NAME: PAYLOAD}) as mirror:
        mirror.faults[NAME] += [Fault("hang", seconds=60)] * 5
        with pytest.raises(InputError) as error:
            fetch.download(
                mirror.url(NAME), tmp_path / "a.tgz", attempts=2, backoff=0.01,
                timeout=0.5,
            )  # fmt: skip
    assert str(error.value) == (
        f"{mirror.url(NAME)}: download failed after 2 attempts: "
        "no answer within 0.5 s (download_timeout)"
    )
    assert not (tmp_path / "a.tgz").exists()


def test_stall_mid_body_fails_within_the_timeout(tmp_path):
    with Mirror({NAME: PAYLOAD}) as mirror:
        mirror.faults[NAME] += [Fault("stall", after=70_000, seconds=60)]
        mirror.faults[NAME] += [Fault("stall", after=0, seconds=60)] * 5
        with pytest.raises(InputError) as error:
            fetch.download(
                mirror.url(NAME), tmp_path / "a.tgz", attempts=2, backoff=0.01,
                timeout=0.5,
            )  # fmt: skip
        _, second = mirror.requests(NAME)
    message = str(error.value)
    assert message.startswith(f"{mirror.url(NAME)}: download failed after 2 attempts")
    assert "no data for 0.5 s after " in message and "(download_timeout)" in message
    assert second.range is not None  # resumed, then stalled again
    assert not (tmp_path / "a.tgz").exists()  # the .part is kept, to resume


def test_unsafe_archive_is_not_downloaded_twice_and_not_kept(tmp_path):
    data = tar_bytes({"data/a.csv": b"x\n1\n", "../evil.csv": b"pwned"})
    with Mirror({NAME: data}) as mirror:
        with pytest.raises(InputError, match=r"unsafe member '\.\./evil\.csv'"):
            fetch.fetch_archive_members(
                mirror.url(NAME),
                tmp_path / "downloads" / "a.tgz",
                {"data/a.csv": tmp_path / "a.csv"},
                lock_file=tmp_path / "checksums.lock.json",
                **FAST,
            )
        assert len(mirror.requests(NAME)) == 1
    assert list((tmp_path / "downloads").iterdir()) == []
    assert not (tmp_path / "checksums.lock.json").exists()


def test_existing_archive_that_fails_its_check_is_downloaded_again(tmp_path):
    data, members = archive_cases()["tgz"]
    (tmp_path / "downloads").mkdir()
    broken = bytearray(data)
    broken[len(data) // 2] ^= 0xFF
    (tmp_path / "downloads" / "a.tgz").write_bytes(bytes(broken))
    with Mirror({f"{NAME}.tgz": data}) as mirror:
        dests = fetch_case(mirror, "tgz", tmp_path)
    assert dests[FUNC].read_bytes() == members[FUNC]
    lock = fetch.read_lock(tmp_path / "checksums.lock.json")
    assert lock["a.tgz"]["sha256"] == sha256(data)


# --------------------------------------------------------------------- progress

PROGRESS_LINE = re.compile(
    r": (?P<done>[\d.]+) MB of (?P<total>[\d.]+) MB \((?P<share>\d+)%\), "
    r"(?:[\d.]+ MB/s|rate unknown)$"
)


def _progress_lines(caplog, url: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "sparseconn.fetch" and record.getMessage().startswith(url)
    ]


def test_download_logs_bytes_of_the_total_and_the_rate(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sparseconn.fetch")
    payload = bytes(range(256)) * 4096  # 1 MiB: 16 network chunks or more
    with Mirror({NAME: payload}) as server:
        url = server.url(NAME)
        fetch.download(url, tmp_path / "a.tgz", **FAST)
    assert (tmp_path / "a.tgz").read_bytes() == payload
    lines = _progress_lines(caplog, url)
    assert lines[0] == f"{url}: downloading (1.0 MB)"
    shares = [
        int(match["share"]) for line in lines if (match := PROGRESS_LINE.search(line))
    ]
    # One line per tenth crossed (each chunk may cross none or several).
    assert len(shares) >= 5
    assert shares == sorted(set(shares)) and shares[-1] == 100
    rate = r"([\d.]+ MB/s|rate unknown)"
    assert re.fullmatch(
        rf"{re.escape(url)}: received 1\.0 MB in [\d.]+ s \({rate}\)", lines[-1]
    )


def test_resumed_download_logs_where_it_resumes(mirror, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sparseconn.fetch")
    mirror.faults[NAME].append(Fault("drop", after=100_000))
    fetch.download(mirror.url(NAME), tmp_path / "a.tgz", **FAST)
    lines = _progress_lines(caplog, mirror.url(NAME))
    assert f"{mirror.url(NAME)}: downloading (0.3 MB, resuming at 0.1 MB)" in lines
    assert lines[-1].startswith(f"{mirror.url(NAME)}: received 0.2 MB in ")


def test_progress_of_unknown_size_is_logged_every_few_seconds(caplog):
    caplog.set_level(logging.INFO, logger="sparseconn.fetch")
    now = [100.0]
    progress = fetch.DownloadProgress("u", clock=lambda: now[0])
    for _ in range(4):  # 2 MB within the first seconds: no line
        now[0] += 1.0
        progress.add(500_000)
    now[0] += fetch.PROGRESS_SECONDS
    progress.add(500_000)  # 2.5 MB in 14 s
    progress.done()
    assert [record.getMessage() for record in caplog.records] == [
        "u: downloading (unknown size)",
        "u: 2.5 MB, 0.18 MB/s",
        "u: received 2.5 MB in 14.0 s (0.18 MB/s)",
    ]
