"""File input/output: atomic writers, streaming NIfTI reader, confounds tables.

Every writer here goes through :func:`atomic_output`: the content is written to a
temporary file in the destination directory and renamed into place only once it is
complete, so no half-written file ever carries a final name.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from sparseconn.errors import InputError

PathLike = str | os.PathLike[str]

#: Number of significant digits written for floating-point values in TSV files.
TSV_FLOAT_FORMAT = "%.10g"


@contextlib.contextmanager
def atomic_output(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched
    (an existing complete file is never replaced by a failed write).
    The temporary name keeps the final suffixes (``.nii.gz``, ``.tsv``) so that
    libraries choosing a format from the file name write the right one.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(final.suffixes)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name.split('.')[0]}.", suffix=f".tmp{suffix}", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_tsv(frame: pd.DataFrame, path: PathLike, index: bool = False) -> None:
    """Write ``frame`` as a tab-separated table, atomically and reproducibly."""
    with atomic_output(path) as tmp:
        frame.to_csv(
            tmp,
            sep="\t",
            index=index,
            float_format=TSV_FLOAT_FORMAT,
            lineterminator="\n",
            na_rep="n/a",
        )


def as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each float rounded as :func:`write_tsv` writes it.

    Computing from these values gives what a reader of the file would compute.
    """
    return frame.map(lambda value: float(TSV_FLOAT_FORMAT % value))


def write_json(obj: Any, path: PathLike) -> None:
    """Write ``obj`` as indented JSON with sorted keys, atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_npz(path: PathLike, **arrays: Any) -> None:
    """Write arrays to an uncompressed ``.npz`` atomically.

    ``numpy.savez`` stores zip members with a fixed timestamp, so identical arrays
    give identical bytes.
    """
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def save_nifti(image: nib.spatialimages.SpatialImage, path: PathLike) -> None:
    """Save a NIfTI image atomically (gzip level and header are deterministic)."""
    with atomic_output(path) as tmp:
        if str(path).endswith(".gz"):
            # nibabel's gzip writer stores the current time in the gzip header;
            # write through our own GzipFile with mtime=0 to get reproducible bytes.
            with (
                open(tmp, "wb") as raw,
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0
                ) as gz,
            ):
                image.to_stream(gz)
        else:
            image.to_filename(tmp)


# --------------------------------------------------------------------------- NIfTI


@dataclass(frozen=True)
class FuncInfo:
    """What the header of a 4D functional image says, checked for usability.

    Attributes
    ----------
    path : Path
    shape : tuple of 4 ints, (x, y, z, n_volumes)
    affine : ndarray, shape (4, 4)
    t_r : float or None
        Repetition time in seconds from the header, ``None`` when the header has
        none (no positive pixdim[4], or a time unit the header does not state).
    unitless_t_r : float or None
        pixdim[4] when the header's time unit is unknown (``xyzt_units`` time
        bits 0, e.g. nibabel's default 1.0): a number that states no repetition
        time, kept to be named in messages; None otherwise.
    """

    path: Path
    shape: tuple[int, int, int, int]
    affine: np.ndarray
    t_r: float | None
    dtype: np.dtype
    offset: int
    slope: float
    inter: float
    unitless_t_r: float | None = None

    @property
    def n_volumes(self) -> int:
        """Number of volumes (time points)."""
        return self.shape[3]

    @property
    def n_voxels(self) -> int:
        """Number of voxels in one volume."""
        return self.shape[0] * self.shape[1] * self.shape[2]

    @property
    def float_dtype(self) -> type[np.floating]:
        """float64 for images stored in float64, else float32 (enough for int16)."""
        return np.float64 if np.dtype(self.dtype) == np.float64 else np.float32

    def to_float(self, raw: np.ndarray) -> np.ndarray:
        """Raw stored values as :attr:`float_dtype`, with the header's scaling."""
        kind = self.float_dtype
        data = raw.astype(kind)
        if self.slope != 1.0:
            data *= kind(self.slope)
        if self.inter != 0.0:
            data += kind(self.inter)
        return data

    def to_float64(self, raw: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``to_float(raw)`` cast to float64, written into ``out`` (same shape).

        Unscaled data whose values :attr:`float_dtype` holds exactly (floats,
        integers of at most 16 bits) are cast once, straight to float64: the
        same values without the intermediate copy.
        """
        exact = self.dtype.kind == "f" or (
            self.dtype.kind in "iu" and self.dtype.itemsize <= 2
        )
        if exact and self.slope == 1.0 and self.inter == 0.0:
            np.copyto(out, raw, casting="unsafe")
        else:
            np.copyto(out, self.to_float(raw))
        return out


_TIME_UNIT_SECONDS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}


def _header_t_r(header: nib.nifti1.Nifti1Header) -> float | None:
    """Repetition time in seconds from a NIfTI header, or None when it states none.

    A header states a repetition time when pixdim[4] is positive and its time
    unit is seconds, milliseconds or microseconds; with an unknown unit
    (``xyzt_units`` time bits 0) pixdim[4] is no repetition time (nibabel writes
    1.0 there by default).
    """
    value = _pixdim_t(header)
    unit = header.get_xyzt_units()[1]
    if value is None or unit not in _TIME_UNIT_SECONDS:
        return None
    return round(value * _TIME_UNIT_SECONDS[unit], 9)


def _unitless_t_r(header: nib.nifti1.Nifti1Header) -> float | None:
    """pixdim[4] of a header whose time unit is unknown, or None."""
    value = _pixdim_t(header)
    if value is None or header.get_xyzt_units()[1] in _TIME_UNIT_SECONDS:
        return None
    return value


def _pixdim_t(header: nib.nifti1.Nifti1Header) -> float | None:
    """pixdim[4] when positive and finite, else None."""
    zooms = header.get_zooms()
    if len(zooms) < 4 or not np.isfinite(zooms[3]) or zooms[3] <= 0:
        return None
    return float(zooms[3])


def read_func_info(path: PathLike, min_volumes: int = 3) -> FuncInfo:
    """Open a 4D NIfTI image's header and check that it can be streamed.

    Raises
    ------
    InputError
        When the file is missing, is not a readable NIfTI image, is not 4D, or has
        fewer than ``min_volumes`` volumes.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        image = nib.load(path)
    except Exception as error:  # nibabel raises many kinds on bad files
        raise InputError(path, f"not a readable NIfTI image ({error})") from error
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise InputError(path, f"not a NIfTI image ({type(image).__name__})")
    shape = tuple(int(n) for n in image.shape)
    if len(shape) != 4:
        raise InputError(
            path, f"{len(shape)}D image of shape {shape}: a 4D time series is required"
        )
    if shape[3] < min_volumes:
        raise InputError(
            path, f"only {shape[3]} volume(s): at least {min_volumes} are required"
        )
    proxy = image.dataobj
    slope = float(getattr(proxy, "slope", 1.0))
    inter = float(getattr(proxy, "inter", 0.0))
    return FuncInfo(
        path=path,
        shape=shape,  # type: ignore[arg-type]
        affine=np.asarray(image.affine, dtype=np.float64),
        t_r=_header_t_r(image.header),
        dtype=np.dtype(proxy.dtype),
        offset=int(proxy.offset),
        slope=1.0 if not np.isfinite(slope) or slope == 0 else slope,
        inter=0.0 if not np.isfinite(inter) else inter,
        unitless_t_r=_unitless_t_r(image.header),
    )


#: Compressed bytes read at a time from a gzipped image.
_GZIP_BLOCK = 1 << 20
#: The first bytes of a gzip member.
_GZIP_MAGIC = b"\x1f\x8b"


class _GzipReader:
    """Sequential reader of a gzip file (one or more members) into buffers.

    The same bytes as :func:`gzip.open`'s, with the compressed file read a
    megabyte at a time and decompressed by zlib straight into the requested
    size: a few calls a chunk of volumes instead of one every 8 KB, so a reader
    thread seldom needs the interpreter lock (zlib releases it while it works).
    Each member's CRC and size are checked by zlib when its end is read.
    """

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")
        self._inflate = zlib.decompressobj(wbits=31)  # gzip header and trailer
        self._input = b""

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` as far as the data go; the number of bytes written."""
        filled = 0
        while filled < len(view):
            if self._inflate.eof:  # a member ended: another may follow
                self._input = self._inflate.unused_data
                self._inflate = zlib.decompressobj(wbits=31)
            if not self._input:
                self._input = self._file.read(_GZIP_BLOCK)
                if not self._input:
                    break
            out = self._inflate.decompress(self._input, len(view) - filled)
            self._input = self._inflate.unconsumed_tail
            view[filled : filled + len(out)] = out
            filled += len(out)
        return filled

    def check_end(self) -> None:
        """Read to the end of the file, so that zlib checks every member's CRC
        and size: a corrupt stream can inflate to wrong values without error.

        Raises
        ------
        EOFError
            When the file ends within a member.
        """
        while True:
            if self._inflate.eof:
                self._input = self._inflate.unused_data or self._file.read(_GZIP_BLOCK)
                if not self._input.startswith(_GZIP_MAGIC):
                    return  # the end, or padding or other bytes after the data
                self._inflate = zlib.decompressobj(wbits=31)
            if not self._input:
                self._input = self._file.read(_GZIP_BLOCK)
                if not self._input:
                    raise EOFError("the compressed stream ends before its end")
            self._inflate.decompress(self._input, _GZIP_BLOCK)
            self._input = self._inflate.unconsumed_tail

    def skip(self, count: int) -> None:
        """Read past ``count`` bytes (the NIfTI header)."""
        if self.readinto(memoryview(bytearray(count))) < count:
            raise EOFError("the file ends within its header")

    def close(self) -> None:
        self._file.close()


@contextlib.contextmanager
def _open_volumes(info: FuncInfo) -> Iterator[Any]:
    """The image file positioned at its data, decompressed if it is gzipped."""
    if info.path.name.endswith(".gz"):
        reader = _GzipReader(info.path)
        try:
            reader.skip(info.offset)
            yield reader
        finally:
            reader.close()
    else:
        with open(info.path, "rb") as handle:
            handle.seek(info.offset)
            yield handle


def iter_volume_chunks(
    info: FuncInfo, chunk_volumes: int = 16, n_buffers: int = 1
) -> Iterator[tuple[int, np.ndarray]]:
    """Stream the raw stored volumes of a 4D NIfTI file, a chunk at a time.

    The file is read once, sequentially (a ``.nii.gz`` is decompressed on the fly),
    so memory stays at ``n_buffers`` chunks whatever the image size: the chunks
    are read into that many buffers in turn, so a chunk stays valid until
    ``n_buffers`` more have been read (1: until the next one).

    Yields
    ------
    start : int
        Index of the chunk's first volume.
    raw : ndarray, shape (n_chunk, n_voxels)
        Stored values (header dtype, unscaled); each row is one volume flattened in
        NIfTI (Fortran) order, i.e. ``raw.reshape(n_chunk, z, y, x)``.

    Raises
    ------
    InputError
        When the file ends early or its compressed stream is corrupt.
    """
    n_volumes = info.n_volumes
    volume_bytes = info.n_voxels * info.dtype.itemsize
    buffers = [
        bytearray(volume_bytes * min(chunk_volumes, n_volumes))
        for _ in range(n_buffers)
    ]
    try:
        with _open_volumes(info) as handle:
            for index, start in enumerate(range(0, n_volumes, chunk_volumes)):
                count = min(chunk_volumes, n_volumes - start)
                view = memoryview(buffers[index % n_buffers])[: count * volume_bytes]
                filled = 0
                while filled < len(view):
                    got = handle.readinto(view[filled:])
                    if not got:
                        complete = start + filled // volume_bytes
                        raise InputError(
                            info.path,
                            f"truncated: the data end after {complete} complete "
                            f"volume(s) of the {n_volumes} the header announces",
                        )
                    filled += got
                yield start, np.frombuffer(view, dtype=info.dtype).reshape(count, -1)
            if isinstance(handle, _GzipReader):
                handle.check_end()
    except (EOFError, OSError, zlib.error) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(
            info.path, f"truncated or corrupt compressed data ({error})"
        ) from error


def check_finite(info: FuncInfo, start: int, data: np.ndarray) -> None:
    """Raise InputError when a chunk of volumes holds NaN or infinite values."""
    if (
        info.dtype.kind in "iu"
        and info.float_dtype(np.iinfo(info.dtype).max) * abs(info.slope)
        + abs(info.inter)
        < np.finfo(info.float_dtype).max / 2
    ):
        return  # scaled integers: finite
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        bad_volume = start + int(np.nonzero(~np.isfinite(data).all(axis=1))[0][0])
        raise InputError(
            info.path, f"NaN or infinite values in volume {bad_volume + 1}"
        )


# ----------------------------------------------------------------------- confounds


def read_confounds(path: PathLike, n_volumes: int) -> pd.DataFrame:
    """Read a confounds table (TSV or CSV, with or without a header row).

    Parameters
    ----------
    path : path-like
        Tab- or comma-separated text; a first row holding any non-numeric cell is
        taken as the header, otherwise columns are named ``confound_01`` ...
    n_volumes : int
        Number of volumes of the matching functional image.

    Returns
    -------
    DataFrame, shape (n_volumes, n_confounds), float64

    Raises
    ------
    InputError
        Unreadable or empty file, wrong number of rows, a non-numeric cell, NaN or
        infinite values.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot read confounds file ({error})") from error
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(path, "empty confounds file")
    separator = "\t" if "\t" in lines[0] else ","
    first = [cell.strip() for cell in lines[0].split(separator)]
    has_header = any(not _is_number(cell) for cell in first)
    try:
        table = pd.read_csv(
            path,
            sep=separator,
            header=0 if has_header else None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=True,
        )
    except Exception as error:
        raise InputError(path, f"cannot parse confounds table ({error})") from error
    if not has_header:
        table.columns = [f"confound_{i + 1:02d}" for i in range(table.shape[1])]
    table.columns = [str(name).strip() for name in table.columns]
    if table.shape[1] == 0:
        raise InputError(path, "no confound columns")
    if len(table) != n_volumes:
        raise InputError(
            path,
            f"{len(table)} rows of confounds but the functional image has "
            f"{n_volumes} volumes",
        )
    values = np.empty(table.shape, dtype=np.float64)
    for j, column in enumerate(table.columns):
        cells = table[column].str.strip()
        numbers = pd.to_numeric(cells, errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        bad = ~np.isfinite(numbers)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            cell = cells.iloc[row]
            kind = "non-numeric" if _not_nan_text(cell) else "NaN or infinite"
            raise InputError(
                path,
                f"{kind} value {cell!r} in column {column!r} at data row {row + 1}",
            )
        values[:, j] = numbers
    return pd.DataFrame(values, columns=table.columns)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _not_nan_text(cell: str) -> bool:
    """True when ``cell`` is text that is not a spelling of NaN/missing."""
    return cell.lower() not in {"nan", "n/a", "na", ""} and not _is_number(cell)


# ------------------------------------------------------------- result files


def read_timeseries(path: PathLike) -> pd.DataFrame:
    """Read a cleaned time-series TSV (header = region names, one row per volume)."""
    frame = pd.read_csv(path, sep="\t")
    if frame.empty or frame.shape[1] == 0:
        raise InputError(path, "empty time series")
    return frame


def relmat_sidecar_path(path: PathLike) -> Path:
    """The JSON sidecar of a relmat TSV: the same name, ``.json``."""
    return Path(path).with_suffix(".json")


def write_relmat(
    matrix: np.ndarray,
    regions: Sequence[str],
    path: PathLike,
    sidecar: dict | None = None,
) -> None:
    """Write a region x region matrix as xcp_d's ``relmat`` TSV (first column Node).

    With ``sidecar``, also its JSON sidecar (:func:`relmat_sidecar_path`).
    """
    frame = pd.DataFrame(matrix, columns=list(regions))
    frame.insert(0, "Node", list(regions))
    write_tsv(frame, path)
    if sidecar is not None:
        write_json(sidecar, relmat_sidecar_path(path))


def _same_regions(
    tables: Sequence[pd.DataFrame], paths: Sequence[PathLike]
) -> list[str]:
    regions = list(tables[0].columns)
    for table, path in zip(tables[1:], paths[1:], strict=True):
        if list(table.columns) != regions:
            raise InputError(
                path, f"regions differ from those of {paths[0]} (same atlas expected)"
            )
    return regions


def read_region_table(path: PathLike) -> pd.DataFrame:
    """Read a region table (a scan's or the group's ``desc-coverage_regions.tsv``)."""
    try:
        table = pd.read_csv(
            path, sep="\t", dtype={"name": str, "reason": str}, keep_default_na=False
        )
    except (OSError, ValueError) as error:
        raise InputError(path, f"unreadable region table ({error})") from error
    for column in ("usable", "kept"):
        if column in table.columns:
            table[column] = table[column].astype(str) == "True"
    return table


def group_regions(path: PathLike) -> list[str]:
    """The regions a group region table keeps, in order."""
    table = read_region_table(path)
    return [
        name for name, kept in zip(table["name"], table["kept"], strict=True) if kept
    ]


def read_unit_timeseries(
    units: Sequence[PathLike | Sequence[PathLike]],
    regions_table: PathLike | None = None,
) -> tuple[list[np.ndarray], list[str]]:
    """Signals of each group element, runs concatenated in time, and the regions.

    Each element is a time-series TSV or a list of them (the runs of one subject
    or session, each cleaned on its own, stacked in the given order). All files
    must have the same regions. With ``regions_table`` (the group's region
    table), only the regions it keeps, in its order.
    """
    groups = [[u] if isinstance(u, str | Path) else list(u) for u in units]
    paths = [path for group in groups for path in group]
    tables = [read_timeseries(path) for path in paths]
    regions = _same_regions(tables, paths)
    if regions_table is not None:
        table = read_region_table(regions_table)
        if list(table["name"]) != regions:
            raise InputError(
                regions_table, f"other regions than the time series {paths[0]}"
            )
        regions = group_regions(regions_table)
        tables = [frame[regions] for frame in tables]
    arrays, start = [], 0
    for group in groups:
        chunk = tables[start : start + len(group)]
        arrays.append(np.vstack([table.to_numpy() for table in chunk]))
        start += len(group)
    return arrays, regions
