"""Downloads of the real datasets (ADHD-40, MSDL atlas) and of subjects-sheet URLs.

:func:`download` fetches one URL into one file with the standard library's HTTP
client: the bytes stream into ``<file>.part``; an interrupted transfer is resumed
with an HTTP ``Range`` request when the server honours it (``206`` with a matching
``Content-Range``) and restarted cleanly otherwise. Transient failures
(connection errors, no byte for ``timeout`` seconds, ``5xx``/``408``/``429``
answers, bodies shorter than announced, bytes that fail validation) are retried
within the call, with exponential backoff, up to ``attempts`` attempts without
progress; final ones (other ``4xx``, a checksum mismatch against a known value,
an unsafe archive) are raised at once. The rules therefore have no Snakemake
``retries``: an error that cannot go away is printed once.

Nothing unvalidated is recorded or named: the complete ``.part`` is checked
(size, MD5 or SHA-256 when known) and validated (:func:`check_data_file`, or the
whole archive and its members, see :func:`extract_members`) before its SHA-256
is recorded in the lock file and before it, or anything extracted from it, is
renamed into place (``os.replace``). A ``.part`` that fails is deleted, so the
next attempt downloads it from scratch.

Checksums: the ones given by the caller (from the config) are verified; otherwise
the SHA-256 and size of the first validated download are recorded in a lock file
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

import bz2
import contextlib
import errno
import fcntl
import gzip
import hashlib
import http.client
import io
import json
import logging
import lzma
import math
import os
import posixpath
import re
import shutil
import socket
import stat
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
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


# ------------------------------------------------------ the development layout
# nilearn 0.13.1's fetch_development_fmri (nilearn/datasets/func.py): the
# participants table is https://osf.io/yr3av/download; each subject's files are
# https://osf.io/download/<key>/ (trailing slash), with one OSF key for the
# confounds TSV and one for the image, listed in nilearn's package data
# (nilearn/datasets/data/development_fmri.csv, shipped here, same keys, as
# sparseconn/data/development_fmri_osf.tsv). nilearn stores everything in
# <data_dir>/development_fmri/development_fmri/.

#: The participants table, relative to the base URL (https://osf.io/).
DEVELOPMENT_PARTICIPANTS_PATH = "yr3av/download"
#: Folder of the files below the dataset's resources folder (nilearn's layout:
#: nilearn's fetcher given that resources folder as data_dir finds them).
DEVELOPMENT_FOLDER = "development_fmri/development_fmri"
DEVELOPMENT_PARTICIPANTS_NAME = "participants.tsv"
DEVELOPMENT_FUNC_NAME = (
    "sub-{subject}_task-pixar_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
)
DEVELOPMENT_CONFOUNDS_NAME = "sub-{subject}_task-pixar_desc-confounds_regressors.tsv"
#: The confounds nilearn's fetcher keeps (reduce_confounds=True, its default, as
#: in nilearn's group-sparse example), in its order; written beside the full table
#: under the name nilearn gives it.
DEVELOPMENT_REDUCED_CONFOUNDS_NAME = (
    "sub-{subject}_task-pixar_desc-reducedConfounds_regressors.tsv"
)
DEVELOPMENT_CONFOUND_COLUMNS: tuple[str, ...] = (
    "trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z",
    "framewise_displacement",
    "a_comp_cor_00", "a_comp_cor_01", "a_comp_cor_02",
    "a_comp_cor_03", "a_comp_cor_04", "a_comp_cor_05",
    "csf", "white_matter",
)  # fmt: skip


def development_index() -> dict[str, tuple[str, str]]:
    """Subject label (``pixar001``) -> (confounds key, image key) on OSF."""
    from importlib.resources import files

    text = files("sparseconn").joinpath("data/development_fmri_osf.tsv").read_text()
    index = {}
    for line in text.splitlines()[1:]:
        participant, confounds_key, bold_key = line.split("\t")
        index[participant.removeprefix("sub-")] = (confounds_key, bold_key)
    return index


def development_file_path(key: str) -> str:
    """A file on OSF, relative to the base URL: ``download/<key>/``."""
    return f"download/{key}/"


def development_subjects(participants: PathLike, n_subjects: int) -> list[str]:
    """The subjects nilearn's ``fetch_development_fmri(n_subjects)`` picks, in order.

    The rule of nilearn 0.13.1 (default ``age_group="both"``), read from its
    source: with ``a`` adults and ``c`` children in the participants table
    (column ``Child_Adult``), it keeps the first ``round(n * c / (a + c))``
    children and first ``round(n * a / (a + c))`` adults in table order (numpy's
    rounding, half to even; so the count may differ from ``n`` by one), except 1
    adult for ``n == 1`` and 1 adult + 1 child for ``n == 2``; then it sorts them
    by ``Child_Adult`` (adults first) with pandas' default sort, numpy's
    quicksort, which is not stable: the same sort is used here, so that the
    order within a group is nilearn's too.

    Parameters
    ----------
    participants : path-like
        The participants TSV (columns ``participant_id``, ``Child_Adult``).
    n_subjects : int
        1 to the number of participants (nilearn silently takes all of them
        for a number out of range; that is an error here).

    Returns
    -------
    list of str
        Subject labels without ``sub-`` (``pixar123``).

    Raises
    ------
    InputError
        A table without those columns or with another group than child/adult
        (naming the file); `ValueError` for ``n_subjects`` out of range.
    """
    import numpy as np
    import pandas as pd

    try:
        table = pd.read_csv(participants, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise InputError(
            participants, f"cannot read the participants table ({error})"
        ) from None
    for column in ("participant_id", "Child_Adult"):
        if column not in table.columns:
            raise InputError(participants, f"participants table has no {column} column")
    groups = table["Child_Adult"].tolist()
    unknown = sorted(set(groups) - {"adult", "child"})
    if unknown:
        raise InputError(
            participants,
            f"Child_Adult {unknown[0]!r} is neither 'adult' nor 'child'",
        )
    total = len(groups)
    if not 1 <= n_subjects <= total:
        raise ValueError(
            f"the development dataset's participants table ({participants}) lists "
            f"{total} subjects; n_subjects {n_subjects} is out of range (1 to {total})"
        )
    n_adults, n_children = groups.count("adult"), groups.count("child")
    wanted = {
        "adult": int(np.round(n_subjects / total * n_adults)),
        "child": int(np.round(n_subjects / total * n_children)),
    }
    if n_subjects == 1:
        wanted = {"adult": 1, "child": 0}
    elif n_subjects == 2:
        wanted = {"adult": 1, "child": 1}
    seen = {"adult": 0, "child": 0}
    kept: list[int] = []
    for row, group in enumerate(groups):
        if seen[group] < wanted[group]:
            seen[group] += 1
            kept.append(row)
    order = np.array([groups[row] for row in kept], dtype=object).argsort(
        kind="quicksort"
    )
    ids = [table["participant_id"].iloc[kept[i]] for i in order]
    return [str(participant).removeprefix("sub-") for participant in ids]


def reduce_development_confounds(full: PathLike, reduced: PathLike) -> Path:
    """Write the confounds nilearn's fetcher keeps (``DEVELOPMENT_CONFOUND_COLUMNS``).

    Tab-separated with a header, in that column order, every value as read
    (nilearn's example regresses this whole file out).

    Raises
    ------
    InputError
        A missing column (naming ``full`` and the column).
    """
    import pandas as pd

    table = pd.read_csv(full, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in DEVELOPMENT_CONFOUND_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            full,
            f"no column {missing[0]!r} among the confounds (nilearn's reduced "
            f"confounds are {', '.join(DEVELOPMENT_CONFOUND_COLUMNS)})",
        )
    with atomic_output(reduced) as temporary:
        table[list(DEVELOPMENT_CONFOUND_COLUMNS)].to_csv(
            temporary, sep="\t", index=False, lineterminator="\n"
        )
    return Path(reduced)


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
#: Default seconds without a byte before an attempt fails (config download_timeout).
DEFAULT_TIMEOUT = 30.0
#: Default attempts without progress per file (config download_attempts).
DEFAULT_ATTEMPTS = 5
#: A download's progress is logged at every tenth of its size, and at least this
#: often (seconds) when the size is unknown or the bytes come slowly.
PROGRESS_SECONDS = 10.0
_USER_AGENT = f"sparseconn/{__version__} (Python urllib)"
_CHECKSUM = re.compile(r"^(md5|sha256):([0-9a-f]+)$")
_HEX_LENGTH = {"md5": 32, "sha256": 64}


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


class DownloadProgress:
    """Log lines a person can follow: bytes received of the total, and the rate.

    ``add`` is called with each chunk's size; a line is logged when the bytes
    cross the next tenth of ``total`` (when known) or ``PROGRESS_SECONDS`` after
    the previous line, and ``done`` logs the whole transfer. The log only: the
    downloaded bytes do not depend on it. ``clock`` (seconds, monotonic) is
    replaceable for tests.
    """

    def __init__(
        self,
        url: str,
        *,
        start: int = 0,
        total: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url, self.total, self.clock = url, total, clock
        self.start = self.received = start
        self.started = self.last_line = clock()
        self.next_tenth = self._tenth(start) + 1
        size = "unknown size" if total is None else _megabytes(total)
        resumed = f", resuming at {_megabytes(start)}" if start else ""
        logger.info("%s: downloading (%s%s)", url, size, resumed)

    def _tenth(self, count: int) -> int:
        return 0 if not self.total else count * 10 // self.total

    def _rate(self, now: float) -> str:
        seconds = now - self.started
        if seconds <= 0:
            return "rate unknown"
        return f"{(self.received - self.start) / seconds / 1e6:.2f} MB/s"

    def add(self, count: int) -> None:
        """Count ``count`` more bytes; log a line when one is due."""
        self.received += count
        now = self.clock()
        tenth = self._tenth(self.received)
        if tenth >= self.next_tenth or now - self.last_line >= PROGRESS_SECONDS:
            self.next_tenth = tenth + 1
            self.last_line = now
            done = _megabytes(self.received)
            if self.total:
                share = 100 * self.received // self.total
                done = f"{done} of {_megabytes(self.total)} ({share}%)"
            logger.info("%s: %s, %s", self.url, done, self._rate(now))

    def done(self) -> None:
        """Log the transfer's size, duration and mean rate."""
        now = self.clock()
        logger.info(
            "%s: received %s in %.1f s (%s)",
            self.url,
            _megabytes(self.received - self.start),
            now - self.started,
            self._rate(now),
        )


class CorruptDownload(InputError):
    """Downloaded bytes that fail validation: a broken archive or data file.

    Unlike other `InputError`, worth downloading again: :func:`download` deletes
    the bytes and retries.
    """


class _Retry(Exception):
    """A failed attempt worth retrying.

    ``progress``: bytes were added to the ``.part`` (the attempt does not count);
    ``reached``: the server answered; ``sha256``: digest of a complete download
    that failed validation.
    """

    def __init__(
        self,
        reason: str,
        *,
        progress: bool = False,
        reached: bool = True,
        sha256: str | None = None,
    ):
        super().__init__(reason)
        self.progress = progress
        self.reached = reached
        self.sha256 = sha256


@dataclass
class _Expected:
    """What the downloaded bytes must match (None: not known)."""

    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    origin: str = "the config"


#: Validation of a complete download: called with the file, it raises
#: `CorruptDownload` (retried) or `InputError` (final), or returns a context
#: manager inside which the lock is written and the file renamed; its normal exit
#: may commit more (e.g. extracted members), an exception undoes them.
Check = Callable[[Path], AbstractContextManager[object]]


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
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = 1.0,
    timeout: float = DEFAULT_TIMEOUT,
    lock_file: PathLike | None = None,
    lock_key: str | None = None,
    unreachable_hint: str = ADHD_UNREACHABLE_HINT,
    check: Check | None = None,
) -> Path:
    """Download ``url`` to ``path``: resumable, retried, validated, atomic.

    Parameters
    ----------
    url : str
        ``http://``, ``https://`` or ``file://`` URL.
    path : path-like
        Destination. Bytes go to ``<path>.part`` first (kept between runs, so
        that a later call resumes it); ``path`` appears only once verified and
        validated. An existing ``path`` is verified and validated, and kept (or
        replaced if it fails).
    sha256, md5 : str, optional
        Expected hexadecimal digests.
    size : int, optional
        Expected size in bytes.
    attempts : int
        Attempts without progress before giving up (connection error, no byte
        for ``timeout`` seconds, HTTP 5xx/408/429, body shorter than announced,
        bytes that fail ``check``). An attempt that resumed and added bytes does
        not count. Bytes that fail ``check`` twice with the same digest are not
        tried again.
    backoff : float
        Seconds before the first retry; doubled each time, at most 60 s.
    timeout : float
        Seconds without a byte (connection, answer or body) before an attempt
        fails (config key ``download_timeout``).
    lock_file : path-like, optional
        JSON file of recorded SHA-256 digests and sizes: verified when it holds
        ``lock_key``, else the download's are added to it, once validated.
    lock_key : str, optional
        Name of the file in ``lock_file`` (default: the destination's name).
    unreachable_hint : str
        Advice appended to the error when the host cannot be reached.
    check : callable, optional
        Validation of the complete file (see `Check`), before anything is
        recorded or renamed.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        HTTP 4xx (e.g. ``HTTP 404 for URL ...``), host unreachable, attempts
        exhausted, size or checksum mismatch, a file that fails ``check``; the
        ``.part`` is deleted unless the transfer was interrupted.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    path = Path(path)
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = lock_key or path.name
    finish = _Finish(
        url, path, _expected(sha256, md5, size, lock_file, key), check, lock_file, key
    )
    if path.exists():
        try:
            finish(path)
        except InputError as error:
            logger.warning("%s exists but fails verification, fetching again", error)
            path.unlink(missing_ok=True)
        else:
            logger.info("%s: already present and verified", path)
            return path

    scheme = urlparse(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise InputError(url, "unsupported URL scheme (http, https or file)")
    host = urlparse(url).netloc
    tries = failures = 0
    reached = False
    rejected: set[str] = set()  # digests of complete downloads that failed check
    while True:
        tries += 1
        try:
            if scheme == "file":
                _copy_local(url, part)
            else:
                _attempt(url, part, timeout, unreachable_hint)
            finish(part)
            return path
        except _Retry as problem:
            reached = reached or problem.reached
            failures = 0 if problem.progress else failures + 1
            if problem.sha256 is not None:  # complete, but failed validation
                if scheme == "file":
                    raise InputError(url, str(problem)) from None
                if problem.sha256 in rejected:
                    raise InputError(
                        url, f"{problem}; the same bytes again at attempt {tries}"
                    ) from None
                rejected.add(problem.sha256)
            if failures >= attempts:
                if not reached:
                    raise InputError(
                        url, f"cannot reach {host}: {unreachable_hint} ({problem})"
                    ) from None
                raise InputError(
                    url, f"download failed after {tries} attempts: {problem}"
                ) from None
            delay = min(backoff * 2 ** (failures - 1), MAX_BACKOFF)
            logger.warning("%s: %s; retrying in %.1f s", url, problem, delay)
            time.sleep(delay)


def _expected(
    sha256: str | None,
    md5: str | None,
    size: int | None,
    lock_file: PathLike | None,
    key: str,
) -> list[_Expected]:
    """What a download must match: the given values, and the lock file's."""
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
    return expected


@dataclass
class _Finish:
    """Verify and validate a complete file, then record it and name it ``path``."""

    url: str
    path: Path
    expected: list[_Expected]
    check: Check | None
    lock_file: PathLike | None
    key: str

    def __call__(self, file: Path) -> None:
        """Finish ``file`` (the ``.part`` or an existing ``path``).

        A ``.part`` that fails is deleted. Raises `_Retry` (with its digest)
        when the bytes fail validation, `InputError` for final failures.
        """
        try:
            digest, length = _verify(file, self.expected, self.url)
            try:
                with self.check(file) if self.check else contextlib.nullcontext():
                    _record(self.lock_file, self.key, digest, length, self.url)
                    if file != self.path:
                        os.replace(file, self.path)
                        _meta_path(file).unlink(missing_ok=True)
            except CorruptDownload as error:
                if file == self.path:
                    raise
                raise _Retry(
                    f"corrupt download: {error.problem}", sha256=digest
                ) from None
        except Exception:
            if file != self.path:
                _restart(file)
            raise
        logger.info("%s: %d bytes, sha256 %s", self.path, length, digest)


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
        if isinstance(reason, TimeoutError):
            reason = f"no connection within {timeout:g} s, download_timeout"
        raise _Retry(f"connection failed ({reason})", reached=False) from None
    except TimeoutError:  # connected, but the answer never came
        raise _Retry(f"no answer within {timeout:g} s (download_timeout)") from None
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
        progress = DownloadProgress(url, start=offset, total=total)
        try:
            with open(part, mode) as out:
                try:
                    while chunk := response.read1(CHUNK_BYTES):
                        out.write(chunk)
                        received += len(chunk)
                        progress.add(len(chunk))
                finally:
                    out.flush()
                    os.fsync(out.fileno())
        except (OSError, http.client.HTTPException) as error:
            problem = f"connection lost after {offset + received} bytes ({error})"
            if isinstance(error, TimeoutError):
                problem = (
                    f"no data for {timeout:g} s after {offset + received} bytes "
                    "(download_timeout)"
                )
            raise _Retry(problem, progress=received > 0 and mode == "ab") from None
    if length is not None and received < length:
        raise _Retry(
            f"truncated body: {received} of {length} bytes",
            progress=received > 0 and mode == "ab",
        )
    if total is not None and offset + received != total:
        raise _Retry(f"got {offset + received} bytes of {total}", progress=False)
    progress.done()


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


# ------------------------------------------------------------------ data files

_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
#: Errors of a broken compressed stream (gzip, zip's deflate, bzip2, xz).
_DECOMPRESSION_ERRORS = (EOFError, zlib.error, lzma.LZMAError, OSError)


def check_data_file(path: PathLike, name: str | None = None) -> None:
    """Check that a downloaded or extracted data file is whole and readable.

    The kind comes from ``name``'s extension (default: ``path``'s name):

    - ``.nii.gz``, ``.nii``: a NIfTI-1 or -2 header nibabel accepts, followed by
      all the data it announces; a ``.gz`` is decompressed to its end, so that
      its CRC and length are checked;
    - ``.csv``, ``.tsv``, ``.txt``: UTF-8 text without NUL bytes that parses as
      a table (tab-separated when its first line holds a tab, else commas);
    - anything else: not checked.

    Raises
    ------
    CorruptDownload
        The file is broken (named in the message, with what is wrong).
    """
    path = Path(path)
    name = (name or path.name).lower()
    if name.endswith(_NIFTI_SUFFIXES):
        _check_nifti(path, gzipped=name.endswith(".gz"))
    elif name.endswith(_TABLE_SUFFIXES):
        _check_table(path)


def _check_nifti(path: Path, gzipped: bool) -> None:
    import nibabel

    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as stream:
            head = stream.read(4)
            sizes = {int.from_bytes(head, order) for order in ("little", "big")}
            header_class = (
                nibabel.Nifti1Header
                if 348 in sizes
                else nibabel.Nifti2Header
                if 540 in sizes
                else None
            )
            if header_class is None:
                raise CorruptDownload(path, "not a NIfTI image (bad header size)")
            head += stream.read(header_class.template_dtype.itemsize - 4)
            try:
                header = header_class.from_fileobj(io.BytesIO(head), check=True)
                shape = header.get_data_shape()
                needed = header.get_data_offset() + header.get_data_dtype().itemsize * (
                    math.prod(int(n) for n in shape)
                )
            except Exception as error:  # nibabel's header errors are of many kinds
                raise CorruptDownload(
                    path, f"not a NIfTI image nibabel can read ({error})"
                ) from None
            found = len(head)
            while block := stream.read(1 << 20):
                found += len(block)
    except _DECOMPRESSION_ERRORS as error:
        problem = "broken or truncated gzip stream" if gzipped else "unreadable"
        raise CorruptDownload(path, f"{problem} ({error})") from None
    if found < needed:
        raise CorruptDownload(
            path,
            f"truncated NIfTI image: {needed - found} bytes short of the "
            f"{needed} its header announces",
        )


def _check_table(path: Path) -> None:
    import pandas as pd

    data = path.read_bytes()
    nul = data.find(b"\0")
    if nul >= 0:
        raise CorruptDownload(path, f"NUL byte at offset {nul}: not a text table")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CorruptDownload(path, f"not UTF-8 text ({error})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise CorruptDownload(path, "empty table")
    separator = "\t" if "\t" in lines[0] else ","
    try:
        pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as error:
        raise CorruptDownload(path, f"cannot parse the table ({error})") from None


@contextlib.contextmanager
def _checked_file(path: Path, name: str) -> Iterator[None]:
    """`Check` of a plain download: :func:`check_data_file` by ``name``."""
    check_data_file(path, name)
    yield


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

    The whole archive is read first, every member to its end, so that a broken
    archive is found whatever member it hits (the gzip, bzip2 or xz stream's
    check of a tar, each member's CRC-32 in a zip) and vetted: any member with
    an absolute path or a ``..`` component, a link pointing outside the archive,
    or a device file makes it refused (tar's ``filter="data"`` rules, and the
    same for zip). Then the requested members are written to temporary names,
    each is checked (:func:`check_data_file`, by its destination's name), and
    only when all are good are they renamed to their destinations.

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
    CorruptDownload
        Broken archive or extracted file (worth downloading again).
    InputError
        Unsafe archive, a missing member, or a member that is not a regular file.
    """
    with _staged_members(Path(archive), members) as written:
        return written


@contextlib.contextmanager
def _staged_members(
    archive: Path, members: Mapping[str, PathLike]
) -> Iterator[list[Path]]:
    """Read and vet ``archive``, extract and check ``members`` to temporary files.

    They are renamed to their destinations when the block ends without error,
    and deleted otherwise.
    """
    names = _vet_archive(archive)
    for name in members:
        if _member_name(name) not in names:
            raise _missing(archive, name, names)
    with contextlib.ExitStack() as stack:
        temporary = {
            name: stack.enter_context(atomic_output(dest))
            for name, dest in members.items()
        }
        with _archive_errors(archive):
            if zipfile.is_zipfile(archive):
                _extract_zip(archive, temporary)
            else:
                _extract_tar(archive, temporary)
        for name, dest in members.items():
            try:
                check_data_file(temporary[name], Path(dest).name)
            except CorruptDownload as error:
                raise CorruptDownload(
                    archive, f"member {name!r}: {error.problem}"
                ) from None
        yield [Path(dest) for dest in members.values()]


@contextlib.contextmanager
def _archive_errors(archive: Path) -> Iterator[None]:
    """Turn the errors of a broken archive into `CorruptDownload`."""
    try:
        yield
    except (tarfile.TarError, zipfile.BadZipFile, *_DECOMPRESSION_ERRORS) as error:
        if isinstance(error, FileNotFoundError) and not archive.exists():
            raise InputError(archive, "archive not found") from None
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise CorruptDownload(archive, f"broken archive ({error})") from None


def _vet_archive(archive: Path) -> list[str]:
    """Read the whole archive and vet its members; their normalised names.

    Raises `CorruptDownload` when it is broken, `InputError` when it is unsafe.
    """
    with _archive_errors(archive):
        if zipfile.is_zipfile(archive):
            return _vet_zip(archive)
        # a compressed stream is read as a tar, to report what is wrong with it
        if _compression(archive) or tarfile.is_tarfile(archive):
            return _vet_tar(archive)
    raise CorruptDownload(archive, "not a tar or zip archive")


def _unsafe(archive: Path, name: str, reason: str) -> InputError:
    return InputError(archive, f"unsafe member {name!r}: {reason}; refused")


#: Openers of compressed streams by their first bytes.
_DECOMPRESSORS: dict[bytes, Callable[[Path], IO[bytes]]] = {
    b"\x1f\x8b": lambda path: gzip.open(path, "rb"),
    b"BZh": lambda path: bz2.open(path, "rb"),
    b"\xfd7zXZ\x00": lambda path: lzma.open(path, "rb"),
}


def _compression(archive: Path) -> bytes | None:
    """The magic bytes of ``archive``'s compression (a key of _DECOMPRESSORS)."""
    with open(archive, "rb") as handle:
        start = handle.read(6)
    return next((magic for magic in _DECOMPRESSORS if start.startswith(magic)), None)


def _decompressed(archive: Path) -> IO[bytes]:
    """``archive`` opened through the decompressor its first bytes call for.

    The standard library's readers check the stream's CRC (gzip), or its own
    check (bzip2, xz), when read to the end; tarfile's own stream reader does
    not.
    """
    magic = _compression(archive)
    return _DECOMPRESSORS[magic](archive) if magic else open(archive, "rb")


def _drain(stream: IO[bytes]) -> int:
    """Read ``stream`` to its end; the number of non-zero bytes read."""
    nonzero = 0
    while block := stream.read(CHUNK_BYTES):
        nonzero += len(block) - block.count(0)
    return nonzero


def _vet_tar(archive: Path) -> list[str]:
    vet_root = os.path.realpath(archive.parent / f".{archive.name}.extract")
    names = []
    with _decompressed(archive) as stream:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
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
                    raise _unsafe(archive, member.name, reason)
                names.append(_member_name(member.name))
                if member.isfile():
                    source = tar.extractfile(member)
                    if source is not None:
                        _drain(source)
        # tarfile stops at the end-of-archive blocks: read on to the end of the
        # compressed stream (its check), where only zero padding may remain.
        if _drain(stream):
            raise CorruptDownload(
                archive, "broken archive (data after the end of the tar archive)"
            )
    return names


def _vet_zip(archive: Path) -> list[str]:
    names = []
    with zipfile.ZipFile(archive) as zf:
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
                raise _unsafe(archive, info.filename, reason)
            names.append(_member_name(info.filename))
            with zf.open(info) as source:  # to the end: its CRC-32 is checked
                _drain(source)
    return names


def _missing(archive: Path, name: str, names: list[str]) -> InputError:
    shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
    return InputError(archive, f"no member {name!r} (members: {shown})")


def _copy_member(source: IO[bytes], dest: Path) -> None:
    with open(dest, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK_BYTES)


def _extract_tar(archive: Path, temporary: Mapping[str, Path]) -> None:
    """Write the (vetted) members of a tar archive to their temporary files."""
    with tarfile.open(archive, "r:*") as tar:
        by_name = {_member_name(member.name): member for member in tar.getmembers()}
        for name, dest in temporary.items():
            member = by_name[_member_name(name)]
            source = tar.extractfile(member) if not member.isdir() else None
            if source is None:
                raise InputError(archive, f"member {name!r} is not a regular file")
            with source:
                _copy_member(source, dest)


def _extract_zip(archive: Path, temporary: Mapping[str, Path]) -> None:
    """Write the (vetted) members of a zip archive to their temporary files."""
    with zipfile.ZipFile(archive) as zf:
        by_name = {_member_name(info.filename): info for info in zf.infolist()}
        for name, dest in temporary.items():
            info = by_name[_member_name(name)]
            if stat.S_ISLNK(info.external_attr >> 16) or info.is_dir():
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

    The archive is read whole and vetted, and the members extracted and checked,
    before its checksum is recorded and before anything gets its final name; a
    broken archive is deleted and downloaded again (see :func:`download`).

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
        ``attempts``, ``backoff``, ``timeout`` of :func:`download`.
    """
    sums: dict[str, str] = {}
    if checksum:
        algorithm, digest = parse_checksum(checksum)
        sums[algorithm] = digest
    written: list[Path] = []

    @contextlib.contextmanager
    def staged(file: Path) -> Iterator[None]:
        with _staged_members(file, members) as paths:
            yield
        written[:] = paths

    try:
        download(
            url,
            archive,
            lock_file=lock_file,
            unreachable_hint=unreachable_hint,
            check=staged,
            **sums,
            **download_options,
        )
    except InputError:
        Path(archive).unlink(missing_ok=True)  # refused: never kept
        raise
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
    """Download one file (a subjects-sheet URL) to ``dest``; see :func:`download`.

    The file is checked by its name (:func:`check_data_file`) before it is
    recorded in ``lock_file`` or named ``dest``.
    """
    sums: dict[str, str] = {}
    if checksum:
        algorithm, digest = parse_checksum(checksum)
        sums[algorithm] = digest
    name = Path(dest).name
    return download(
        url,
        dest,
        lock_file=lock_file,
        lock_key=lock_key,
        unreachable_hint=unreachable_hint,
        check=lambda file: _checked_file(file, name),
        **sums,
        **download_options,
    )


def fetch_development_subject(
    urls: Mapping[str, str],
    outputs: Mapping[str, PathLike],
    *,
    checksums: Mapping[str, str | None] | None = None,
    lock_file: PathLike | None = None,
    **download_options: Any,
) -> list[Path]:
    """Download a development subject's image and confounds, write the reduced ones.

    Parameters
    ----------
    urls : mapping
        ``{"func": url, "confounds": url}``.
    outputs : mapping
        ``{"func": path, "confounds": path, "reduced_confounds": path}``.
    checksums : mapping, optional
        ``"md5:<hex>"`` or ``"sha256:<hex>"`` (or None) by the keys of ``urls``.
    lock_file : path-like, optional
        Checksum lock file, see :func:`download` (keys: the files' names).
    **download_options
        ``attempts``, ``backoff``, ``timeout`` of :func:`download`.
    """
    checksums = checksums or {}
    hint = "use dataset: synthetic, or set development.base_url to a mirror"
    written = [
        fetch_file(
            urls[key],
            outputs[key],
            checksum=checksums.get(key),
            lock_file=lock_file,
            unreachable_hint=hint,
            **download_options,
        )
        for key in ("func", "confounds")
    ]
    written.append(
        reduce_development_confounds(outputs["confounds"], outputs["reduced_confounds"])
    )
    return written
