"""The subjects sheet, the repetition time and the config's keys.

The subjects sheet is the user's list of subjects (``dataset: sheet``): a
tab-separated table with one row per subject and the columns

``subject``
    The subject's label, letters and digits only, as in BIDS (``01``, ``A17``);
    outputs are named ``sub-<subject>_...``. Read as text: leading zeros are kept.
``func``
    The 4D resting-state image (``.nii`` or ``.nii.gz``): a path, relative to the
    sheet's folder unless absolute, or an ``http(s)://`` or ``file://`` URL.
``confounds`` (optional column; an empty cell means none)
    A confounds table (TSV with a header row, one row per volume), path or URL.
``t_r`` (optional column; an empty cell means unknown)
    The repetition time in seconds; it must agree with the image header's.
``exclude`` (optional column)
    ``true``/``yes``/``1`` leaves the subject out of the group stage (its
    per-subject outputs are still built); ``false``/``no``/``0``/empty keeps it.

Other columns are allowed and ignored. Rows are returned sorted by subject, so
that the order of the sheet's rows changes nothing downstream.
"""

from __future__ import annotations

import csv
import difflib
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sparseconn.errors import InputError
from sparseconn.io import PathLike

logger = logging.getLogger(__name__)

#: Subject labels: letters and digits only (a BIDS label; no ``sub-`` prefix).
SUBJECT_PATTERN = re.compile(r"[A-Za-z0-9]+")
#: Columns every sheet must have.
REQUIRED_COLUMNS = ("subject", "func")
#: Columns a sheet may have.
OPTIONAL_COLUMNS = ("confounds", "t_r", "exclude")

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0", ""})
_KEPT_URL = re.compile(r"^(?:https?|file)://", re.IGNORECASE)
_ANY_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: Relative tolerance between a given repetition time and the header's.
T_R_RTOL = 1e-3


@dataclass(frozen=True)
class Subject:
    """One row of the subjects sheet, checked and resolved.

    Attributes
    ----------
    subject : str
        Label, letters and digits only (``sub-`` prefix not included).
    func : str
        Path of the 4D image (relative paths already joined to the sheet's
        folder) or URL.
    confounds : str or None
        Path or URL of the confounds table, or None.
    t_r : float or None
        Repetition time in seconds from the sheet, or None.
    exclude : bool
        True to leave the subject out of the group stage.
    """

    subject: str
    func: str
    confounds: str | None = None
    t_r: float | None = None
    exclude: bool = False


def is_url(value: str) -> bool:
    """Whether ``value`` is an ``http(s)://`` or ``file://`` URL."""
    return bool(_KEPT_URL.match(value))


def check_subject_id(subject: str, source: PathLike, where: str = "") -> str:
    """Return ``subject`` if it is a valid label, else raise `InputError`.

    Parameters
    ----------
    subject : str
        Candidate label.
    source : path-like or str
        Named in the error (the sheet, or ``"config"``).
    where : str
        Location prefix for the error, e.g. ``"line 3: "``.
    """
    if SUBJECT_PATTERN.fullmatch(subject):
        return subject
    if not subject:
        raise InputError(source, f"{where}empty subject id")
    hint = ""
    if subject.lower().startswith("sub-") and SUBJECT_PATTERN.fullmatch(subject[4:]):
        hint = f"; write {subject[4:]!r}, without the 'sub-' prefix"
    raise InputError(
        source,
        f"{where}invalid subject id {subject!r}: letters and digits only, "
        f"as in BIDS labels (no spaces, '-', '_', '/' or '.'){hint}",
    )


def match_label(
    value: str | int,
    labels: Iterable[str],
    key: str,
    source: PathLike,
    prefix: str = "sub",
) -> str | None:
    """The label among ``labels`` that config value ``value`` (key ``key``) names.

    Text names the label it spells, with or without ``<prefix>-``. An integer
    is what ``--config key=01`` becomes (Snakemake reads ``01`` as the number 1,
    and the leading zero is lost): it names the one label made of digits with
    that value (1 names ``01``, or ``1``, or ``001``).

    Returns
    -------
    str or None
        The label, or None when no label matches.

    Raises
    ------
    InputError
        When an integer matches several labels (``01`` and ``1``): the message
        names them and how to write the label so that it stays text
        (``--config key=sub-01``: Snakemake strips quotes).
    """
    labels = sorted(set(labels))
    if isinstance(value, bool) or not isinstance(value, int):
        text = str(value).removeprefix(f"{prefix}-")
        return text if text in labels else None
    matches = [label for label in labels if label.isdigit() and int(label) == value]
    if len(matches) > 1:
        raise InputError(
            source,
            f"{key} {value} matches {' and '.join(repr(m) for m in matches)}: "
            f"--config reads {matches[0]} as the number {value}; write the label "
            f"with its prefix, e.g. --config {key}={prefix}-{matches[0]}, or as "
            f'text in a config file ({key}: "{matches[0]}")',
        )
    return matches[0] if matches else None


def read_subjects_sheet(path: PathLike) -> list[Subject]:
    """Read and check a subjects sheet.

    Parameters
    ----------
    path : path-like
        The tab-separated sheet (see the module docstring for its columns).

    Returns
    -------
    list of Subject
        One per row, sorted by subject label.

    Raises
    ------
    InputError
        Naming ``path`` and the problem: unreadable or empty sheet, missing
        required column, invalid or duplicate subject id, empty ``func``,
        non-numeric or non-positive ``t_r``, invalid ``exclude``, unsupported URL
        scheme, or a local ``func``/``confounds`` file that does not exist.
    """
    source = str(path)
    header, rows = _read_table(path)
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        hint = ""
        if len(header) == 1 and ("," in header[0] or ";" in header[0]):
            hint = "; is the sheet tab-separated?"
        raise InputError(
            source,
            f"missing required column {missing[0]!r} "
            f"(found columns: {', '.join(repr(c) for c in header)}){hint}",
        )
    if not rows:
        raise InputError(source, "the sheet lists no subjects (header row only)")

    base = Path(path).parent
    subjects: dict[str, int] = {}
    folded: dict[str, str] = {}
    result = []
    for line, cells in rows:
        record = dict(zip(header, cells, strict=True))
        subject = check_subject_id(record["subject"], source, f"line {line}: ")
        if subject in subjects:
            raise InputError(
                source,
                f"duplicate subject {subject!r} (lines {subjects[subject]} and {line})",
            )
        if subject.lower() in folded:
            other = folded[subject.lower()]
            raise InputError(
                source,
                f"subjects {other!r} and {subject!r} differ only in case (lines "
                f"{subjects[other]} and {line}); their output folders would collide "
                "on case-insensitive file systems",
            )
        subjects[subject] = line
        folded[subject.lower()] = subject
        where = f"line {line} (subject {subject!r}): "
        func = _location(record["func"], base, source, where, "func", required=True)
        confounds = _location(
            record.get("confounds", ""), base, source, where, "confounds"
        )
        result.append(
            Subject(
                subject=subject,
                func=func,
                confounds=confounds,
                t_r=_parse_t_r(record.get("t_r", ""), source, where),
                exclude=_parse_exclude(record.get("exclude", ""), source, where),
            )
        )
    return sorted(result, key=lambda row: row.subject)


def _read_table(path: PathLike) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and non-blank rows ``(line number, cells)`` of a TSV file."""
    source = str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t", strict=True)
            lines = [(reader.line_num, cells) for cells in reader]
    except FileNotFoundError:
        raise InputError(source, "subjects sheet not found") from None
    except IsADirectoryError:
        raise InputError(source, "is a directory, not a subjects sheet") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(source, f"cannot read the subjects sheet: {error}") from None
    lines = [(n, cells) for n, cells in lines if any(c.strip() for c in cells)]
    if not lines:
        raise InputError(source, "empty subjects sheet (no header row, no subjects)")
    (_, header), rows = lines[0], lines[1:]
    for column in header:
        if header.count(column) > 1:
            raise InputError(source, f"column {column!r} appears more than once")
    padded = []
    for line, cells in rows:
        if len(cells) > len(header):
            raise InputError(
                source,
                f"line {line} has {len(cells)} cells but the header has "
                f"{len(header)} columns",
            )
        padded.append((line, cells + [""] * (len(header) - len(cells))))
    return header, padded


def _location(
    value: str,
    base: Path,
    source: str,
    where: str,
    column: str,
    *,
    required: bool = False,
) -> str | None:
    """Resolve a path or URL cell; check that a local file exists."""
    if value == "":
        if required:
            raise InputError(source, f"{where}empty {column} cell")
        return None
    if is_url(value):
        return value
    if _ANY_URL.match(value):
        raise InputError(
            source,
            f"{where}unsupported URL {value!r} in column {column!r} "
            "(use a path, or an http://, https:// or file:// URL)",
        )
    resolved = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
    if not os.path.exists(resolved):
        raise InputError(source, f"{where}{column} file {resolved!r} does not exist")
    if not os.path.isfile(resolved):
        raise InputError(source, f"{where}{column} {resolved!r} is not a file")
    return resolved


def _parse_t_r(value: str, source: str, where: str) -> float | None:
    """Parse a ``t_r`` cell: empty, or a positive number of seconds."""
    text = value.strip()
    if text == "":
        return None
    try:
        t_r = float(text)
    except ValueError:
        raise InputError(
            source, f"{where}t_r {value!r} is not a number (seconds)"
        ) from None
    if not math.isfinite(t_r) or t_r <= 0:
        raise InputError(
            source, f"{where}t_r {value!r} must be a positive number of seconds"
        )
    return t_r


def _parse_exclude(value: str, source: str, where: str) -> bool:
    """Parse an ``exclude`` cell: true/false/yes/no/1/0/empty (any case)."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(
        source,
        f"{where}exclude {value!r} is not one of true, false, yes, no, 1, 0 or empty",
    )


class RepetitionTime(NamedTuple):
    """A repetition time and where it came from.

    Attributes
    ----------
    seconds : float
    source : str
        Where the value came from (recorded in the time series' JSON sidecar as
        ``RepetitionTimeSource``), e.g. ``"NIfTI header"`` or ``"config (t_r)"``;
        it also says when the header's pixdim[4] was ignored because the header
        does not state its time unit.
    """

    seconds: float
    source: str


#: Where a repetition time is set, named in errors (dataset sheet, synthetic, adhd).
SET_T_R_HINT = "give t_r in the subjects sheet (column t_r) or in the config (t_r)"


def resolve_repetition_time(
    func_path: PathLike,
    header_t_r: float | None,
    given: Sequence[tuple[float | None, str]] = (),
    *,
    unitless_header_t_r: float | None = None,
    hint: str = SET_T_R_HINT,
) -> RepetitionTime:
    """The repetition time of an image: the first value given, else the header's.

    Parameters
    ----------
    func_path : path-like
        The image, named in errors.
    header_t_r : float or None
        Repetition time in seconds stated by the NIfTI header (pixdim[4] with a
        known time unit); None, 0 or a non-finite value mean none.
    given : sequence of (float or None, str)
        Explicit values in order of precedence, each with where it comes from
        (e.g. ``(2.0, "subjects sheet (t_r)")``); None means not given.
    unitless_header_t_r : float, optional
        pixdim[4] of a header whose time unit is unknown. It states no
        repetition time: an explicit value wins over it (noted in ``source``
        and logged); without one, the error says so.
    hint : str
        How to give a repetition time, appended to the "no repetition time" error.

    Raises
    ------
    InputError
        If the chosen value is not a positive number, if it differs from the
        header's by more than ``T_R_RTOL`` (relative), or if no value is known.
    """
    header = header_t_r
    has_header = header is not None and math.isfinite(header) and header > 0
    chosen = [(value, origin) for value, origin in given if value is not None]
    if not chosen:
        if has_header:
            return RepetitionTime(float(header), "NIfTI header")
        if unitless_header_t_r is not None:
            raise InputError(
                func_path,
                "no repetition time: the NIfTI header does not state its time unit "
                f"(xyzt_units), so its pixdim[4] {unitless_header_t_r:g} is not a "
                f"repetition time; {hint}",
            )
        raise InputError(
            func_path, f"no repetition time: the NIfTI header has none; {hint}"
        )
    given_t_r, origin = chosen[0]
    if (
        isinstance(given_t_r, bool)
        or not isinstance(given_t_r, int | float)
        or not math.isfinite(given_t_r)
        or given_t_r <= 0
    ):
        raise InputError(
            func_path,
            f"repetition time {given_t_r!r} from the {origin} must be a positive "
            "number",
        )
    if has_header and abs(given_t_r - header) > T_R_RTOL * header:
        raise InputError(
            func_path,
            f"repetition time {given_t_r:g} s from the {origin} disagrees with "
            f"{header:g} s in the NIfTI header",
        )
    source = origin
    if not has_header and unitless_header_t_r is not None:
        source = (
            f"{origin}; the NIfTI header's pixdim[4] {unitless_header_t_r:g} was "
            "ignored: its time unit is unknown"
        )
        differs = abs(given_t_r - unitless_header_t_r) > T_R_RTOL * given_t_r
        logger.log(
            logging.WARNING if differs else logging.INFO,
            "%s: repetition time %g s from the %s; the header's pixdim[4] %g is "
            "ignored (its time unit is unknown)",
            func_path,
            given_t_r,
            origin,
            unitless_header_t_r,
        )
    return RepetitionTime(float(given_t_r), source)


def resolve_t_r(
    func_path: PathLike,
    header_t_r: float | None,
    sheet_t_r: float | None = None,
    config_t_r: float | None = None,
    *,
    unitless_header_t_r: float | None = None,
) -> float:
    """The repetition time in seconds of an image: sheet, else config, else header.

    See :func:`resolve_t_r_with_source`.
    """
    return resolve_t_r_with_source(
        func_path,
        header_t_r,
        sheet_t_r,
        config_t_r,
        unitless_header_t_r=unitless_header_t_r,
    ).seconds


def resolve_t_r_with_source(
    func_path: PathLike,
    header_t_r: float | None,
    sheet_t_r: float | None = None,
    config_t_r: float | None = None,
    *,
    unitless_header_t_r: float | None = None,
) -> RepetitionTime:
    """The repetition time of an image and its source: sheet, else config, else header.

    See :func:`resolve_repetition_time` (``sheet_t_r`` and ``config_t_r`` are
    the explicit values, in that order).
    """
    return resolve_repetition_time(
        func_path,
        header_t_r,
        [(sheet_t_r, "subjects sheet (t_r)"), (config_t_r, "config (t_r)")],
        unitless_header_t_r=unitless_header_t_r,
    )


def check_config_keys(
    config: Mapping[str, Any], schema: Mapping[str, Any], source: str = "config"
) -> None:
    """Raise `InputError` if ``config`` has keys that ``schema`` does not describe.

    Nested objects whose schema lists ``properties`` are checked too (their keys
    are reported as ``parent.key``). A close known key is suggested.

    Parameters
    ----------
    config : mapping
        The workflow's config.
    schema : mapping
        The config's JSON schema (an object schema with ``properties``).
    source : str
        Named in the error, e.g. the config file(s).
    """
    problems = _unknown_keys(config, schema, prefix="")
    if problems:
        raise InputError(source, "; ".join(problems))


def _unknown_keys(
    config: Mapping[str, Any], schema: Mapping[str, Any], prefix: str
) -> list[str]:
    properties = schema.get("properties", {})
    known = sorted(properties)
    problems = []
    for key in sorted(config, key=str):
        name = f"{prefix}{key}"
        if key not in properties:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            suggestion = f"; did you mean {prefix + close[0]!r}?" if close else ""
            problems.append(
                f"unknown key {name!r}{suggestion} (known keys"
                f"{' of ' + prefix[:-1] if prefix else ''}: {', '.join(known)})"
            )
        elif isinstance(config[key], Mapping) and "properties" in properties[key]:
            problems += _unknown_keys(config[key], properties[key], prefix=f"{name}.")
    return problems
