"""A real HTTP server on 127.0.0.1 for the download tests, with injected faults.

:class:`Mirror` serves files from memory in a background thread (the standard
library's ``http.server``, port chosen by the system), honours ``Range`` and
``If-Range`` (unless built with ``ranges=False``), logs every request, and plays
faults queued per path: a status code, a connection dropped after some bytes,
corrupted bytes, a stall, no answer at all, or a throttled body. Stalls end when
the mirror is closed. :func:`adhd_mirror_files` builds a
tiny mirror of the ADHD-40 and MSDL hosts (the real paths and archive members)
from synthetic images.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import socket
import tarfile
import threading
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sparseconn import fetch

#: Paths of the real hosts, served under the mirror's root.
NITRC_PATH = "frs/download.php"
MSDL_PATH = "parietal/files/2015/01/MSDL_rois.zip"


@dataclass
class Fault:
    """One injected fault, consumed by the next request of its path.

    kind : "status" (answer ``status``), "drop" (close after ``after`` body bytes),
    "corrupt" (flip the byte at offset ``after`` of the file), "stall" (sleep
    ``seconds`` after ``after`` body bytes), "hang" (read the request, then send
    nothing for ``seconds``, then close), "throttle" (send ``rate`` bytes per
    second for the whole body).
    """

    kind: str
    status: int = 500
    after: int = 0
    seconds: float = 0.0
    rate: float = 0.0


@dataclass
class Request:
    """A logged request: its path, Range header, status sent and body bytes sent."""

    path: str
    range: str | None
    if_range: str | None
    status: int = 0
    sent: int = 0


@dataclass
class Mirror:
    """Files served from memory on 127.0.0.1; a context manager."""

    files: dict[str, bytes]
    ranges: bool = True
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    log: list[Request] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Mirror:
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                try:
                    mirror._serve(self)
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()  # ends the stalls and hangs
        self.server.shutdown()
        self.server.server_close()

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def url(self, path: str) -> str:
        return self.root + path.lstrip("/")

    def requests(self, path: str) -> list[Request]:
        """Logged requests of ``path``."""
        return [entry for entry in self.log if entry.path == path.lstrip("/")]

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0].lstrip("/")
        entry = Request(
            path, handler.headers.get("Range"), handler.headers.get("If-Range")
        )
        self.log.append(entry)
        fault = self.faults[path].pop(0) if self.faults.get(path) else None
        data = self.files.get(path)
        if fault is not None and fault.kind == "status":
            return self._status(handler, entry, fault.status)
        if fault is not None and fault.kind == "hang":
            self.closing.wait(fault.seconds)
            handler.close_connection = True
            return None
        if data is None:
            return self._status(handler, entry, 404)
        if fault is not None and fault.kind == "corrupt":
            data = bytearray(data)
            data[fault.after] ^= 0xFF
            data = bytes(data)
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-", entry.range or "")
        if self.ranges and match and entry.if_range in (None, etag):
            start = int(match.group(1))
            if start >= len(data):
                entry.status = 416  # logged before answering: the client may be quick
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(data)}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return None
            status = 206
        body = data[start:]
        entry.status = status
        handler.send_response(status)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("ETag", etag)
        if self.ranges:
            handler.send_header("Accept-Ranges", "bytes")
        if status == 206:
            handler.send_header(
                "Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"
            )
        handler.end_headers()
        if fault is not None and fault.kind == "drop":
            self._write(handler, entry, body[: fault.after])
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return None
        if fault is not None and fault.kind == "stall":
            self._write(handler, entry, body[: fault.after])
            handler.wfile.flush()
            if self.closing.wait(fault.seconds):
                handler.close_connection = True
                return None
            body = body[fault.after :]
        if fault is not None and fault.kind == "throttle":
            step = max(1, int(fault.rate / 20))
            for offset in range(0, len(body), step):
                self._write(handler, entry, body[offset : offset + step])
                handler.wfile.flush()
                time.sleep(step / fault.rate)
            return None
        self._write(handler, entry, body)
        return None

    @staticmethod
    def _write(handler, entry: Request, chunk: bytes) -> None:
        entry.sent += len(chunk)  # counted first: the client may be quicker
        try:
            handler.wfile.write(chunk)
        except OSError:
            entry.sent -= len(chunk)
            raise

    @staticmethod
    def _status(handler, entry: Request, status: int) -> None:
        body = f"status {status}\n".encode()
        entry.status = status
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


# ------------------------------------------------------------ an ADHD-40 mirror


def tar_bytes(members: dict[str, bytes]) -> bytes:
    """A ``.tgz`` holding ``members`` (name -> content), fixed timestamps."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A ``.zip`` holding ``members`` (name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


def adhd_mirror_files(
    folder: Path, n_subjects: int = 3, n_volumes: int = 60, n_regions: int = 6
) -> dict[str, bytes]:
    """Files of a mirror of NITRC (ADHD-40) and of the MSDL host, tiny and synthetic.

    Paths are those of the real hosts: ``frs/download.php/7782/adhd40_0010042.tgz``
    ... and ``parietal/files/2015/01/MSDL_rois.zip``; archive members are named as
    in the real archives. Images: MSDL-like maps on a coarse 8 mm grid and 12 mm
    functional images with TR 2.0 s in the header.
    """
    from sparseconn.synthetic import generate_subject

    folder.mkdir(parents=True, exist_ok=True)
    func_affine = func_grid_affine(12.0)
    msdl_zip, truth = msdl_atlas_zip(folder, n_regions)
    files = {MSDL_PATH: msdl_zip}
    subjects = fetch.adhd_subjects(n_subjects)
    phenotypes = "Subject,site,age\n" + "".join(f"{s},1,10\n" for s in subjects)
    files[f"{NITRC_PATH}/{fetch.ADHD_PHENOTYPES_ARCHIVE}"] = tar_bytes(
        {fetch.ADHD_PHENOTYPES_MEMBER: phenotypes.encode()}
    )
    for index, subject in enumerate(subjects):
        func, confounds = folder / f"{subject}.nii.gz", folder / f"{subject}.tsv"
        generate_subject(
            func,
            confounds,
            folder / f"{subject}_truth.npz",
            atlas_truth_path=truth,
            subject_index=index,
            subject=subject,
            n_volumes=n_volumes,
            t_r=2.0,
            shape=(16, 19, 16),
            affine=func_affine,
        )
        members = fetch.adhd_subject_members(subject)
        files[f"{NITRC_PATH}/{fetch.adhd_subject_archive(subject)}"] = tar_bytes(
            {
                members["func"]: func.read_bytes(),
                members["confounds"]: confounds.read_bytes(),
            }
        )
    return files


def func_grid_affine(voxel_mm: float) -> np.ndarray:
    """Affine of the mirrors' functional images: ``voxel_mm`` voxels over MNI."""
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = [-90.0, -126.0, -72.0]
    return affine


def msdl_atlas_zip(folder: Path, n_regions: int) -> tuple[bytes, Path]:
    """An MSDL-like atlas (8 mm maps and labels) zipped as the real archive's
    members, and the file of its generated truth (for the subjects)."""
    from sparseconn.synthetic import generate_atlas

    atlas_affine = np.array(
        [[8.0, 0, 0, -78.0], [0, 8.0, 0, -111.0], [0, 0, 8.0, -51.0], [0, 0, 0, 1]]
    )
    maps, labels, truth = (
        folder / "msdl_rois.nii",
        folder / "msdl_rois_labels.csv",
        folder / "truth.npz",
    )
    generate_atlas(
        maps,
        labels,
        truth,
        n_regions=n_regions,
        shape=(20, 24, 18),
        affine=atlas_affine,
    )
    members = {
        fetch.MSDL_MAPS_MEMBER: maps.read_bytes(),
        fetch.MSDL_LABELS_MEMBER: labels.read_bytes(),
    }
    return zip_bytes(members), truth
