"""Downloads of the real datasets (ADHD-40, MSDL atlas) and of subjects-sheet URLs.

:func:`download` fetches one URL into one file with the standard library's HTTP
client: the bytes stream into ``<file>.part``; an interrupted transfer is resumed
with an HTTP ``Range`` request when the server honours it (``206`` with a matching
``Content-Range``) and restarted cleanly otherwise; connection errors, time-outs,
``5xx`` answers and bodies shorter than announced are retried with exponential
backoff; the result is checked (size, MD5 or SHA-256) before it is renamed into
place (``os.replace``), so a final name never holds a partial or unverified file.

Checksums: the ones given by the caller (from the config) are verified; otherwise
the SHA-256 and size of the first complete download are recorded in a lock file
beside the data (``checksums.lock.json``, deterministic JSON) and every later
download of the same file must match them.

:func:`extract_members` copies the members a rule needs out of a tar or zip
archive, refusing archives with absolute paths, ``..`` components or links that
point outside (the semantics of tar's ``filter="data"``), one atomic file each.

The ADHD-40 layout (subject ids in nilearn's order, archive paths relative to the
base URL, member names) is described by the constants below; the hosts themselves
are configuration (``config/adhd.yaml``). Errors are `InputError` with one-line
messages. This module does not import Snakemake.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import http.client
import json
import logging
import os
import posixpath
import re
import shutil
import socket
import stat
import tarfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from stat import S_IFDIR, S_IFREG
from typing import IO, Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse
from urllib.request import Request, url2pathname, urlopen

from sparseconn import __version__
from sparseconn.errors import InputError
from sparseconn.io import PathLike, atomic_output

logger = logging.getLogger(__name__)

# ------------------------------------------------------------ the ADHD-40 layout

#: The 40 ADHD-200 subjects of nilearn's ``fetch_adhd``, in its order (numeric
#: labels with leading zeros: always strings).
ADHD_SUBJECTS: tuple[str, ...] = (
    "0010042", "0010064", "0010128", "0021019", "0023008",
    "0023012", "0027011", "0027018", "0027034", "0027037",
    "1019436", "1206380", "1418396", "1517058", "1552181",
    "1562298", "1679142", "2014113", "2497695", "2950754",
    "3007585", "3154996", "3205761", "3520880", "3624598",
    "3699991", "3884955", "3902469", "3994098", "4016887",
    "4046678", "4134561", "4164316", "4275075", "6115230",
    "7774305", "8409791", "8697774", "9744150", "9750701",
)  # fmt: skip
#: NITRC file id of the first subject's archive; the others follow in order.
ADHD_FIRST_FILE_ID = 7782
#: The phenotypic table's archive (relative to the base URL) and its member.
ADHD_PHENOTYPES_ARCHIVE = "7781/adhd40_metadata.tgz"
ADHD_PHENOTYPES_MEMBER = "ADHD200_40subs_motion_parameters_and_phenotypics.csv"
#: Members of the MSDL zip.
MSDL_MAPS_MEMBER = "MSDL_rois/msdl_rois.nii"
MSDL_LABELS_MEMBER = "MSDL_rois/msdl_rois_labels.csv"


def adhd_subjects(n_subjects: int) -> list[str]:
    """The first ``n_subjects`` ADHD-40 subject ids, in nilearn's order.

    Raises
    ------
    ValueError
        If ``n_subjects`` is not in 1..40.
    """
    if not 1 <= n_subjects <= len(ADHD_SUBJECTS):
        raise ValueError(
            f"the ADHD dataset has {len(ADHD_SUBJECTS)} subjects; "
            f"n_subjects {n_subjects} is out of range (1 to {len(ADHD_SUBJECTS)})"
        )
    return list(ADHD_SUBJECTS[:n_subjects])


def adhd_subject_archive(subject: str) -> str:
    """A subject's archive relative to the base URL (``7782/adhd40_<id>.tgz``)."""
    index = ADHD_SUBJECTS.index(subject)
    return f"{ADHD_FIRST_FILE_ID + index}/adhd40_{subject}.tgz"


def adhd_subject_members(subject: str) -> dict[str, str]:
    """Archive members of a subject: ``{"func": ..., "confounds": ...}``."""
    folder = f"data/{subject}"
    return {
        "func": f"{folder}/{subject}_rest_tshift_RPI_voreg_mni.nii.gz",
        "confounds": f"{folder}/{subject}_regressors.csv",
    }


def join_url(base_url: str, relative: str) -> str:
    """``base_url`` (with or without a trailing slash) joined with ``relative``."""
    return base_url.rstrip("/") + "/" + relative.lstrip("/")


# -------------------------------------------------------------------- downloads

#: Hint of the error raised when the host cannot be reached at all.
ADHD_UNREACHABLE_HINT = "use dataset: synthetic, or set adhd.base_url to a mirror"
#: Bytes read from the network at a time.
CHUNK_BYTES = 1 << 16
#: Longest wait between two attempts, in seconds.
MAX_BACKOFF = 60.0
_USER_AGENT = f"sparseconn/{__version__} (Python urllib)"
_CHECKSUM = re.compile(r"^(md5|sha256):([0-9a-f]+)$")
_HEX_LENGTH = {"md5": 32, "sha256": 64}


class _Retry(Exception):
    """A failed attempt worth retrying; ``progress`` when bytes were kept."""

    def __init__(self, reason: str, *, progress: bool = False, reached: bool = True):
        super().__init__(reason)
        self.progress = progress
        self.reached = reached


@dataclass
class _Expected:
    """What the downloaded bytes must match (None: not known)."""

    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    origin: str = "the config"


def parse_checksum(value: str) -> tuple[str, str]:
    """Split ``"md5:<hex>"`` or ``"sha256:<hex>"`` into (algorithm, lowercase hex).

    Raises
    ------
    ValueError
        For any other form.
    """
    match = _CHECKSUM.match(value.strip().lower())
    if match is None or len(match.group(2)) != _HEX_LENGTH[match.group(1)]:
        raise ValueError(
            f"checksum {value!r} is not 'md5:<32 hex digits>' or "
            "'sha256:<64 hex digits>'"
        )
    return match.group(1), match.group(2)


def download(
    url: str,
    path: PathLike,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
    lock_file: PathLike | None = None,
    lock_key: str | None = None,
    unreachable_hint: str = ADHD_UNREACHABLE_HINT,
) -> Path:
    """Download ``url`` to ``path``: resumable, retried, verified, atomic.

    Parameters
    ----------
    url : str
        ``http://``, ``https://`` or ``file://`` URL.
    path : path-like
        Destination. Bytes go to ``<path>.part`` first (kept between runs, so
        that a later call resumes it); ``path`` appears only once verified.
        An existing ``path`` is verified and kept (or replaced if it fails).
    sha256, md5 : str, optional
        Expected hexadecimal digests.
    size : int, optional
        Expected size in bytes.
    retries : int
        Further attempts after a failed one (connection error, time-out, HTTP
        5xx/408/429, body shorter than announced). An attempt that resumed and
        added bytes does not count.
    backoff : float
        Seconds before the first retry; doubled each time, at most 60 s.
    timeout : float
        Seconds without a byte (connection or read) before an attempt fails.
    lock_file : path-like, optional
        JSON file of recorded SHA-256 digests and sizes: verified when it holds
        ``lock_key``, else the download's are added to it.
    lock_key : str, optional
        Name of the file in ``lock_file`` (default: the destination's name).
    unreachable_hint : str
        Advice appended to the error when the host cannot be reached.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        HTTP 4xx (e.g. ``HTTP 404 for URL ...``), host unreachable, retries
        exhausted, size or checksum mismatch (the ``.part`` is then deleted).
    """
    path = Path(path)
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = lock_key or path.name
    expected = [_Expected(sha256=_hex(sha256), md5=_hex(md5), size=size)]
    if lock_file is not None:
        locked = read_lock(lock_file).get(key)
        if locked is not None:
            expected.append(
                _Expected(
                    sha256=locked.get("sha256"),
                    size=locked.get("size"),
                    origin=f"{lock_file} (recorded at the first download)",
                )
            )
    if path.exists():
        try:
            digest, length = _verify(path, expected, url)
        except InputError as error:
            logger.warning("%s exists but fails verification, fetching again", error)
            path.unlink()
        else:
            logger.info("%s: already present and verified", path)
            _record(lock_file, key, digest, length, url)
            return path

    scheme = urlparse(url).scheme.lower()
    if scheme == "file":
        _copy_local(url, part)
    elif scheme in ("http", "https"):
        _fetch(url, part, retries, backoff, timeout, unreachable_hint)
    else:
        raise InputError(url, "unsupported URL scheme (http, https or file)")
    try:
        digest, length = _verify(part, expected, url)
    except InputError:
        part.unlink(missing_ok=True)
        _meta_path(part).unlink(missing_ok=True)
        raise
    _record(lock_file, key, digest, length, url)
    os.replace(part, path)
    _meta_path(part).unlink(missing_ok=True)
    logger.info("%s: %d bytes, sha256 %s", path, length, digest)
    return path


def _hex(value: str | None) -> str | None:
    return None if value is None else value.strip().lower()


def _copy_local(url: str, part: Path) -> None:
    """Copy a ``file://`` URL's file to ``part``."""
    source = Path(url2pathname(urlparse(url).path))
    try:
        with open(source, "rb") as handle, open(part, "wb") as out:
            shutil.copyfileobj(handle, out, CHUNK_BYTES)
            out.flush()
            os.fsync(out.fileno())
    except FileNotFoundError:
        part.unlink(missing_ok=True)
        raise InputError(url, f"file {str(source)!r} does not exist") from None
    except OSError as error:
        part.unlink(missing_ok=True)
        raise InputError(url, f"cannot read {str(source)!r} ({error})") from None


def _fetch(
    url: str,
    part: Path,
    retries: int,
    backoff: float,
    timeout: float,
    unreachable_hint: str,
) -> None:
    """Fill ``part`` with the complete body of ``url`` (resuming, retrying)."""
    host = urlparse(url).netloc
    failures = 0
    reached = False
    while True:
        try:
            _attempt(url, part, timeout, unreachable_hint)
            return
        except _Retry as problem:
            reached = reached or problem.reached
            if problem.progress:
                failures = 0
            else:
                failures += 1
            if failures > retries:
                if not reached:
                    raise InputError(
                        url, f"cannot reach {host}: {unreachable_hint} ({problem})"
                    ) from None
                raise InputError(
                    url, f"download failed after {retries + 1} attempts: {problem}"
                ) from None
            delay = min(backoff * 2 ** max(failures - 1, 0), MAX_BACKOFF)
            logger.warning("%s: %s; retrying in %.1f s", url, problem, delay)
            time.sleep(delay)


def _attempt(url: str, part: Path, timeout: float, unreachable_hint: str) -> None:
    """One request: append to ``part`` (206) or rewrite it (200).

    Raises `_Retry` for transient failures and `InputError` for final ones.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    validator = _read_meta(part).get("validator") if offset else None
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as error:
        with error:
            _http_error(url, part, offset, error)
        return
    except URLError as error:
        reason = error.reason
        if isinstance(reason, socket.gaierror):
            raise InputError(
                url,
                f"cannot reach {urlparse(url).netloc}: {unreachable_hint} ({reason})",
            ) from None
        raise _Retry(f"connection failed ({reason})", reached=False) from None
    except (OSError, http.client.HTTPException) as error:
        raise _Retry(f"connection failed ({error})", reached=False) from None

    with response:
        status = response.status
        length = _int_header(response.headers.get("Content-Length"))
        if status == 206 and offset:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                # Not the bytes asked for: start again from zero.
                _restart(part)
                raise _Retry(
                    f"server answered a range starting at {start}, not {offset}"
                )
            mode = "ab"
        elif status == 200:
            if offset:
                logger.info("%s: the server sent the whole file, restarting", url)
            offset, total, mode = 0, length, "wb"
            _write_meta(part, response.headers)
        else:
            raise _Retry(f"unexpected HTTP {status}")
        received = 0
        try:
            with open(part, mode) as out:
                try:
                    while chunk := response.read1(CHUNK_BYTES):
                        out.write(chunk)
                        received += len(chunk)
                finally:
                    out.flush()
                    os.fsync(out.fileno())
        except (OSError, http.client.HTTPException) as error:
            raise _Retry(
                f"connection lost after {offset + received} bytes ({error})",
                progress=received > 0 and mode == "ab",
            ) from None
    if length is not None and received < length:
        raise _Retry(
            f"truncated body: {received} of {length} bytes",
            progress=received > 0 and mode == "ab",
        )
    if total is not None and offset + received != total:
        raise _Retry(f"got {offset + received} bytes of {total}", progress=False)


def _http_error(url: str, part: Path, offset: int, error: HTTPError) -> None:
    code = error.code
    if code == 416 and offset:
        _, total = _content_range(error.headers.get("Content-Range"))
        if total == offset:
            return  # the .part already holds the whole file
        _restart(part)
        raise _Retry("HTTP 416: the partial file does not fit, restarting")
    if code >= 500 or code in (408, 429):
        raise _Retry(f"HTTP {code} ({error.reason})")
    raise InputError(url, f"HTTP {code} for URL {url} ({error.reason})")


def _restart(part: Path) -> None:
    part.unlink(missing_ok=True)
    _meta_path(part).unlink(missing_ok=True)


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of ``bytes a-b/n`` or ``bytes */n``."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if match is None:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_meta(part: Path) -> dict[str, Any]:
    try:
        return json.loads(_meta_path(part).read_text())
    except (OSError, ValueError):
        return {}


def _write_meta(part: Path, headers: Any) -> None:
    """Remember the response's validator (strong ETag, else Last-Modified).

    Sent back as ``If-Range`` when resuming, so that a file changed on the server
    in between is sent whole rather than spliced.
    """
    etag = headers.get("ETag")
    validator = etag if etag and not etag.startswith("W/") else None
    validator = validator or headers.get("Last-Modified")
    meta = _meta_path(part)
    if validator:
        meta.write_text(json.dumps({"validator": validator}) + "\n")
    else:
        meta.unlink(missing_ok=True)


def _digests(path: Path) -> tuple[str, str, int]:
    """(sha256, md5, size) of a file."""
    sha, md = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            sha.update(block)
            md.update(block)
            size += len(block)
    return sha.hexdigest(), md.hexdigest(), size


def _verify(path: Path, expected: list[_Expected], url: str) -> tuple[str, int]:
    """Check size and digests; return (sha256, size)."""
    sha, md, size = _digests(path)
    for want in expected:
        where = f"{url} (expected from {want.origin})"
        if want.size is not None and size != want.size:
            raise InputError(
                path,
                f"size mismatch for {where}: expected {want.size} bytes, got {size}",
            )
        for name, wanted, got in (("sha256", want.sha256, sha), ("md5", want.md5, md)):
            if wanted is not None and wanted != got:
                raise InputError(
                    path,
                    f"checksum mismatch for {where}: expected {name} {wanted}, "
                    f"got {got}",
                )
    return sha, size


# ------------------------------------------------------------------- lock file


def read_lock(lock_file: PathLike) -> dict[str, dict[str, Any]]:
    """The entries of a checksum lock file (empty when it does not exist).

    Returns
    -------
    dict
        ``{key: {"sha256": str, "size": int, "url": str}}``.
    """
    path = Path(lock_file)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise InputError(path, f"unreadable checksum lock file ({error})") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise InputError(path, "checksum lock file without a 'files' object")
    return files


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock for a read-modify-write of ``lock_file``."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    guard = lock_file.with_name(f".{lock_file.name}.flock")
    with open(guard, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _record(
    lock_file: PathLike | None, key: str, sha256: str, size: int, url: str
) -> None:
    """Add ``key`` to the lock file, or check it against the recorded entry."""
    if lock_file is None:
        return
    lock_file = Path(lock_file)
    with _locked(lock_file):
        files = read_lock(lock_file)
        entry = files.get(key)
        if entry is not None:
            if entry.get("sha256") != sha256 or entry.get("size") != size:
                raise InputError(
                    lock_file,
                    f"checksum mismatch for {url}: expected sha256 "
                    f"{entry.get('sha256')}, got {sha256}",
                )
            return
        files[key] = {"sha256": sha256, "size": size, "url": url}
        text = json.dumps({"files": files}, indent=2, sort_keys=True) + "\n"
        with atomic_output(lock_file) as tmp:
            tmp.write_text(text)
    logger.info("%s: recorded sha256 %s of %s", lock_file, sha256, key)


# --------------------------------------------------------------------- archives


def _member_name(name: str) -> str:
    """Normalised member name (``./a//b`` -> ``a/b``)."""
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return posixpath.normpath(name) if name else name


def _unsafe_path(name: str) -> str | None:
    """Why a member name is unsafe, or None."""
    raw = name.replace("\\", "/")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        return "absolute path"
    if ".." in raw.split("/"):
        return "'..' component (path outside the archive)"
    return None


def extract_members(archive: PathLike, members: Mapping[str, PathLike]) -> list[Path]:
    """Extract the named members of a tar or zip archive, safely and atomically.

    The whole archive is vetted first: any member with an absolute path or a
    ``..`` component, a link pointing outside the archive, or a device file
    makes it refused (tar's ``filter="data"`` rules, and the same for zip).
    Only the requested members are written, each to a temporary name then
    renamed to its destination.

    Parameters
    ----------
    archive : path-like
        ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz`` or ``.zip``.
    members : mapping of str to path-like
        Member name (``./`` prefixes are ignored) to destination file.

    Returns
    -------
    list of Path
        The destinations, in the order of ``members``.

    Raises
    ------
    InputError
        Unreadable or unsafe archive, a missing member, or a member that is not
        a regular file.
    """
    archive = Path(archive)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, members)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, members)
        else:
            raise InputError(archive, "not a tar or zip archive")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as error:
        raise InputError(archive, f"corrupt archive ({error})") from None
    except OSError as error:
        if isinstance(error, FileNotFoundError) and not archive.exists():
            raise InputError(archive, "archive not found") from None
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise InputError(archive, f"corrupt archive ({error})") from None
    return [Path(dest) for dest in members.values()]


def _missing(archive: Path, name: str, names: list[str]) -> InputError:
    shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
    return InputError(archive, f"no member {name!r} (members: {shown})")


def _copy_member(source: IO[bytes], dest: PathLike) -> None:
    with atomic_output(dest) as tmp, open(tmp, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK_BYTES)


def _extract_tar(archive: Path, members: Mapping[str, PathLike]) -> None:
    vet_root = os.path.realpath(archive.parent / f".{archive.name}.extract")
    with tarfile.open(archive, "r:*") as tar:
        by_name = {}
        for member in tar.getmembers():
            reason = _unsafe_path(member.name)
            if reason is None and (member.issym() or member.islnk()):
                if _unsafe_path(member.linkname) and member.issym():
                    reason = f"link to {member.linkname!r} outside the archive"
            if reason is None:
                try:
                    tarfile.data_filter(member, vet_root)
                except tarfile.FilterError as error:
                    reason = str(error)
            if reason is not None:
                raise InputError(
                    archive, f"unsafe member {member.name!r}: {reason}; refused"
                )
            by_name[_member_name(member.name)] = member
        for name, dest in members.items():
            member = by_name.get(_member_name(name))
            if member is None:
                raise _missing(archive, name, list(by_name))
            source = tar.extractfile(member) if not member.isdir() else None
            if source is None:
                raise InputError(archive, f"member {name!r} is not a regular file")
            with source:
                _copy_member(source, dest)


def _extract_zip(archive: Path, members: Mapping[str, PathLike]) -> None:
    with zipfile.ZipFile(archive) as zf:
        by_name = {}
        for info in zf.infolist():
            reason = _unsafe_path(info.filename)
            mode = info.external_attr >> 16
            is_link = stat.S_ISLNK(mode)
            if reason is None and is_link:
                target = zf.read(info).decode("utf-8", "replace")
                joined = posixpath.join(posixpath.dirname(info.filename), target)
                outside = posixpath.normpath(joined).split("/")[0] == ".."
                if _unsafe_path(target) or outside:
                    reason = f"link to {target!r} outside the archive"
            # file type 0: the archiver stored permissions only (a regular file)
            kind = stat.S_IFMT(mode)
            if reason is None and not is_link and kind not in (0, S_IFREG, S_IFDIR):
                reason = "not a regular file, directory or link"
            if reason is not None:
                raise InputError(
                    archive, f"unsafe member {info.filename!r}: {reason}; refused"
                )
            by_name[_member_name(info.filename)] = (info, is_link)
        for name, dest in members.items():
            found = by_name.get(_member_name(name))
            if found is None:
                raise _missing(archive, name, list(by_name))
            info, is_link = found
            if is_link or info.is_dir():
                raise InputError(archive, f"member {name!r} is not a regular file")
            with zf.open(info) as source:
                _copy_member(source, dest)


# ------------------------------------------------------------------ rule tasks


def fetch_archive_members(
    url: str,
    archive: PathLike,
    members: Mapping[str, PathLike],
    *,
    checksum: str | None = None,
    lock_file: PathLike | None = None,
    unreachable_hint: str = ADHD_UNREACHABLE_HINT,
    keep_archive: bool = False,
    **download_options: Any,
) -> list[Path]:
    """Download an archive, extract the wanted members, then delete the archive.

    Parameters
    ----------
    url : str
        The archive's URL.
    archive : path-like
        Where the archive is downloaded (its name is its key in ``lock_file``).
    members : mapping of str to path-like
        Member name to destination, see :func:`extract_members`.
    checksum : str, optional
        ``"md5:<hex>"`` or ``"sha256:<hex>"`` of the archive.
    lock_file : path-like, optional
        Checksum lock file, see :func:`download`.
    keep_archive : bool
        Keep the archive after extraction (default: delete it).
    **download_options
        ``retries``, ``backoff``, ``timeout`` of :func:`download`.
    """
    sums: dict[str, str] = {}
    if checksum:
        algorithm, digest = parse_checksum(checksum)
        sums[algorithm] = digest
    download(
        url,
        archive,
        lock_file=lock_file,
        unreachable_hint=unreachable_hint,
        **sums,
        **download_options,
    )
    written = extract_members(archive, members)
    if not keep_archive:
        Path(archive).unlink(missing_ok=True)
    return written


def fetch_file(
    url: str,
    dest: PathLike,
    *,
    checksum: str | None = None,
    lock_file: PathLike | None = None,
    lock_key: str | None = None,
    unreachable_hint: str = "check the network, or download the file and give its path",
    **download_options: Any,
) -> Path:
    """Download one file (a subjects-sheet URL) to ``dest``; see :func:`download`."""
    sums: dict[str, str] = {}
    if checksum:
        algorithm, digest = parse_checksum(checksum)
        sums[algorithm] = digest
    return download(
        url,
        dest,
        lock_file=lock_file,
        lock_key=lock_key,
        unreachable_hint=unreachable_hint,
        **sums,
        **download_options,
    )
