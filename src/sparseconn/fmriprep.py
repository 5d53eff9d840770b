"""fMRIPrep derivatives in: scan discovery, denoising strategies, cleaned signals.

Three pieces, each usable on its own:

* :func:`find_scans` lists the preprocessed BOLD runs of a BIDS derivatives
  dataset written by fMRIPrep (≥ 1.2; the confounds are ``*_desc-confounds_
  timeseries.tsv`` since 20.2, ``*_desc-confounds_regressors.tsv`` before), with
  their confounds file, filtered by participant, task, space, session, run and
  resolution.
* :func:`denoise` selects the confounds and the censored volumes of one scan by a
  named strategy (:data:`STRATEGIES`). The presets ``simple``, ``scrubbing`` and
  ``compcor`` give the same columns, values and sample mask as nilearn's
  ``interfaces.fmriprep.load_confounds_strategy`` with its default parameters;
  ``highvariance`` is this project's own (the reference example's) strategy.
* :func:`clean_scan_signals` extracts one signal per atlas map and cleans it with
  those confounds and that censoring, as ``NiftiMapsMasker(...).fit_transform(
  img, confounds=..., sample_mask=...)`` does.

nilearn's ``ica_aroma`` preset is not offered: it denoises a different image
(fMRIPrep's ``desc-smoothAROMAnonaggr_bold``, in MNI152NLin6Asym only, no longer
produced since fMRIPrep 24) and only adds WM/CSF regressors to it; running it on
``desc-preproc_bold`` would silently skip the AROMA step.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sparseconn.errors import InputError
from sparseconn.io import PathLike, read_func_info
from sparseconn.subjects import (
    RepetitionTime,
    match_label,
    resolve_repetition_time,
)

if TYPE_CHECKING:
    from sparseconn.regions import AtlasSpec
    from sparseconn.signals import Cleaned, CleaningSettings


logger = logging.getLogger(__name__)

#: BIDS entities a preprocessed BOLD file name may carry, in BIDS order.
ENTITY_ORDER: tuple[str, ...] = (
    "sub",
    "ses",
    "task",
    "acq",
    "ce",
    "rec",
    "dir",
    "run",
    "echo",
    "space",
    "cohort",
    "res",
    "den",
)
#: Entities of the output space: the confounds file name does not carry them.
SPATIAL_ENTITIES = frozenset({"space", "cohort", "res", "den"})
BOLD_SUFFIX = "_desc-preproc_bold.nii.gz"
CONFOUNDS_SUFFIXES = (
    "_desc-confounds_timeseries.tsv",  # fMRIPrep >= 20.2
    "_desc-confounds_regressors.tsv",  # fMRIPrep 1.2 - 20.1
)
_LABEL = re.compile(r"^[A-Za-z0-9]+$")

# ------------------------------------------------------------------ discovery


@dataclass(frozen=True)
class Scan:
    """One preprocessed BOLD run and its confounds file: one unit of work.

    Attributes
    ----------
    entities : tuple of (key, label) pairs
        The BIDS entities of the BOLD file name in BIDS order (``sub``, ``ses``,
        ``task``, ``acq``, ..., ``run``, ..., ``space``, ``cohort``, ``res``,
        ``den``), absent ones omitted; ``desc`` and the suffix are not included.
    bold : Path
        The ``*_desc-preproc_bold.nii.gz`` image.
    confounds : Path
        Its ``*_desc-confounds_timeseries.tsv`` (or ``_regressors.tsv``).
    """

    entities: tuple[tuple[str, str], ...]
    bold: Path
    confounds: Path

    def get(self, key: str) -> str | None:
        """The label of entity ``key`` (e.g. ``"run"``), or None when absent."""
        return dict(self.entities).get(key)

    @property
    def subject(self) -> str:
        """The participant label, without ``sub-``."""
        return dict(self.entities)["sub"]

    @property
    def name(self) -> str:
        """BIDS prefix of the scan's outputs.

        E.g. ``sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_res-2``.
        """
        return "_".join(f"{key}-{label}" for key, label in self.entities)

    @property
    def group_key(self) -> str:
        """``sub-01_ses-1`` (or ``sub-01``): the runs to concatenate together."""
        return "_".join(
            f"{key}-{label}" for key, label in self.entities if key in ("sub", "ses")
        )

    @property
    def confounds_json(self) -> Path:
        """The JSON sidecar of the confounds file (needed by ``compcor``)."""
        return self.confounds.with_suffix(".json")


def parse_bold_name(name: str) -> tuple[tuple[str, str], ...] | None:
    """Entities of a ``*_desc-preproc_bold.nii.gz`` file name, or None.

    None when the name does not end with the suffix, holds an entity this module
    does not know, a label that is not alphanumeric, entities out of BIDS order
    or repeated, or lacks ``sub`` or ``task``.
    """
    if not name.endswith(BOLD_SUFFIX):
        return None
    pairs = []
    for part in name[: -len(BOLD_SUFFIX)].split("_"):
        key, _, label = part.partition("-")
        if key not in ENTITY_ORDER or not _LABEL.match(label):
            return None
        pairs.append((key, label))
    ranks = [ENTITY_ORDER.index(key) for key, _ in pairs]
    if ranks != sorted(set(ranks)) or not ranks or ranks[0] != 0:
        return None
    if "task" not in dict(pairs):
        return None
    return tuple(pairs)


def _confounds_candidates(
    bold: Path, entities: Sequence[tuple[str, str]]
) -> list[Path]:
    stem = "_".join(f"{k}-{v}" for k, v in entities if k not in SPATIAL_ENTITIES)
    return [bold.parent / f"{stem}{suffix}" for suffix in CONFOUNDS_SUFFIXES]


def _as_labels(
    value: str | int | Iterable[str | int] | None,
    prefix: str,
    present: Iterable[str],
    key: str,
    source: PathLike,
) -> list[str] | None:
    """Config values as labels: ``<prefix>-`` removed, integers matched to labels.

    An integer names the label of ``present`` with its numeric value (``01`` for
    1, see :func:`sparseconn.subjects.match_label`); without one, its digits.
    """
    if value is None:
        return None
    values = [value] if isinstance(value, str | int) else list(value)
    present = set(present)
    labels = []
    for item in values:
        label = match_label(item, present, key, source, prefix=prefix)
        labels.append(label or str(item).removeprefix(f"{prefix}-"))
    return labels


def _same_label(key: str, a: str, b: str) -> bool:
    """Labels equal; run indices compare as numbers (``run-1`` is ``run-01``)."""
    if key == "run" and a.isdigit() and b.isdigit():
        return int(a) == int(b)
    return a == b


def _sort_key(scan: Scan) -> tuple:
    return tuple(
        (ENTITY_ORDER.index(key), label.zfill(12) if label.isdigit() else label)
        for key, label in scan.entities
    )


def _present(entities: Iterable[tuple[tuple[str, str], ...]], key: str) -> str:
    labels = sorted({dict(e).get(key) or "(none)" for e in entities})
    return ", ".join(labels)


def find_scans(
    fmriprep_dir: PathLike,
    *,
    participant_label: str | int | Sequence[str | int] | None = None,
    task: str | None = "rest",
    space: str | None = "MNI152NLin2009cAsym",
    session: str | int | Sequence[str | int] | None = None,
    run: str | int | Sequence[str | int] | None = None,
    res: str | int | None = None,
) -> list[Scan]:
    """The preprocessed BOLD runs of an fMRIPrep derivatives dataset.

    Looks for ``sub-*/[ses-*/]func/*_desc-preproc_bold.nii.gz`` and, beside each
    selected one, its confounds file (the BOLD entities without ``space``,
    ``cohort``, ``res`` and ``den``, ``_desc-confounds_timeseries.tsv``, or the
    older ``_desc-confounds_regressors.tsv``).

    Parameters
    ----------
    fmriprep_dir : path-like
        Root of the derivatives dataset (holding ``dataset_description.json``).
    participant_label : str or list of str, optional
        Participants to keep, with or without ``sub-``; default all. A label no
        scan has is an error. An integer (what ``--config participant_label=02``
        becomes) names the participant whose label has that value (``02``);
        two such labels (``02`` and ``2``) are an error.
    task : str or None
        Task label (default ``"rest"``); None keeps every task.
    space : str or None
        Output space (default ``"MNI152NLin2009cAsym"``); None keeps every space.
    session, run : str/int or list of them, optional
        Sessions and runs to keep (runs compare as numbers; integer sessions as
        participants do); default all.
    res : str or int, optional
        Resolution label (``res-2``: ``"2"``); default all.

    Returns
    -------
    list of Scan
        Sorted by entities (participant, session, task, ..., run, space, res).

    Raises
    ------
    InputError
        The folder does not exist or holds no BOLD file; a filter removed every
        scan (the message names the filter and the values present); a requested
        participant has no scan; one run is selected twice (in two spaces or at
        two resolutions: the message names the files and the filter to set); a
        selected scan has no confounds file, or two.
    """
    root = Path(fmriprep_dir)
    if not root.is_dir():
        raise InputError(root, "fMRIPrep derivatives folder not found")
    if not (root / "dataset_description.json").is_file():
        logger.warning("%s: no dataset_description.json (not BIDS derivatives?)", root)
    found: list[tuple[tuple[str, str], ...]] = []
    paths: dict[tuple[tuple[str, str], ...], Path] = {}
    for pattern in (f"sub-*/func/*{BOLD_SUFFIX}", f"sub-*/ses-*/func/*{BOLD_SUFFIX}"):
        for path in root.glob(pattern):
            entities = parse_bold_name(path.name)
            if entities is None:
                logger.warning("%s: not a BIDS name this tool reads; skipped", path)
                continue
            folders = [p.partition("-") for p in path.relative_to(root).parts[:-2]]
            if any(dict(entities).get(key) != label for key, _, label in folders):
                logger.warning("%s: entities differ from its folders; skipped", path)
                continue
            found.append(entities)
            paths[entities] = path
    if not found:
        raise InputError(
            root,
            f"no sub-*/[ses-*/]func/*{BOLD_SUFFIX} file: not an fMRIPrep "
            "derivatives folder",
        )

    def labels(value, prefix: str, key: str) -> list[str] | None:
        present = {dict(e).get(prefix) for e in found} - {None}
        return _as_labels(value, prefix, present, key, root)

    subjects = labels(participant_label, "sub", "participant_label")
    if subjects is not None:
        present = {dict(e)["sub"] for e in found}
        missing = [s for s in subjects if s not in present]
        if missing:
            raise InputError(
                root,
                f"no scan for participant(s) {', '.join(missing)}; participants "
                f"present: {_present(found, 'sub')}",
            )
    filters: list[tuple[str, list[str] | None]] = [
        ("sub", subjects),
        ("task", labels(task, "task", "task")),
        ("space", labels(space, "space", "space")),
        ("ses", labels(session, "ses", "session")),
        ("run", labels(run, "run", "run")),
        ("res", labels(res, "res", "res")),
    ]
    selected = found
    for key, wanted in filters:
        if wanted is None:
            continue
        kept = [
            e
            for e in selected
            if dict(e).get(key) is not None
            and any(_same_label(key, dict(e)[key], w) for w in wanted)
        ]
        if not kept:
            asked = ", ".join(f"{key}-{w}" for w in wanted)
            raise InputError(
                root,
                f"no scan has {asked} (after the filters before it); "
                f"{key} labels present: {_present(selected, key)}",
            )
        selected = kept
    _check_one_image_per_run(selected, paths)

    scans = []
    for entities in selected:
        bold = paths[entities]
        candidates = _confounds_candidates(bold, entities)
        existing = [c for c in candidates if c.is_file()]
        if not existing:
            raise InputError(
                bold,
                f"no confounds file beside it: expected {candidates[0].name} "
                f"(fMRIPrep >= 20.2) or {candidates[1].name}",
            )
        if len(existing) > 1:
            raise InputError(
                bold,
                f"two confounds files beside it ({existing[0].name} and "
                f"{existing[1].name}): keep one",
            )
        scans.append(Scan(entities=entities, bold=bold, confounds=existing[0]))
    return sorted(scans, key=_sort_key)


#: Config keys that choose among the images of one run, by entity.
_SPATIAL_FILTERS = {"space": "space", "res": "res"}


def _check_one_image_per_run(
    selected: Sequence[tuple[tuple[str, str], ...]],
    paths: dict[tuple[tuple[str, str], ...], Path],
) -> None:
    """Raise `InputError` when one run is selected in two spaces or resolutions.

    Each selected image becomes an element of the group stage (or a part of
    one), so two images of one run would count that run twice.
    """
    by_run: dict[tuple[tuple[str, str], ...], list] = {}
    for entities in selected:
        run = tuple(pair for pair in entities if pair[0] not in SPATIAL_ENTITIES)
        by_run.setdefault(run, []).append(entities)
    for run, images in by_run.items():
        if len(images) < 2:
            continue
        first, second = sorted(images, key=lambda e: paths[e].name)[:2]
        differ = [
            key
            for key in ENTITY_ORDER
            if key in SPATIAL_ENTITIES and dict(first).get(key) != dict(second).get(key)
        ]
        filters = [_SPATIAL_FILTERS[key] for key in differ if key in _SPATIAL_FILTERS]
        if filters:
            key = filters[0]
            how = (
                f"choose one with the config key {key} ({key} labels present: "
                f"{_present(images, key)})"
            )
        else:
            how = f"they differ only in {', '.join(differ)}: keep one of them"
        name = "_".join(f"{k}-{v}" for k, v in run)

        first_labels, second_labels = (
            "_".join(
                f"{key}-{dict(image)[key]}" for key in differ if key in dict(image)
            )
            for image in (first, second)
        )
        raise InputError(
            paths[first],
            f"same run ({name}) as {paths[second].name} ({first_labels} and "
            f"{second_labels}): both would enter the group stage, counting the "
            f"run twice; {how}",
        )


# ------------------------------------------------------------------- strategies

#: Denoising strategies and their parameters (recorded in the JSON sidecar).
#:
#: ``simple``, ``scrubbing`` and ``compcor`` are nilearn's
#: ``load_confounds_strategy`` presets with their default parameters:
#:
#: * ``high_pass``: fMRIPrep's discrete-cosine regressors (columns ``cosine*``);
#: * ``motion``: the 6 rigid-body parameters; ``"full"`` adds their temporal
#:   derivatives, squares and squared derivatives (24 columns);
#: * ``wm_csf``: the mean white-matter and CSF signals (``"basic"``, 2 columns;
#:   ``"full"``, 8 columns);
#: * ``compcor``: ``"anat_combined"`` takes the anatomical CompCor components of
#:   the combined WM+CSF mask (from the confounds JSON), ``n_compcor="all"`` all
#:   of them;
#: * ``scrub``: censor volumes with framewise displacement above
#:   ``fd_threshold`` (mm) or standardised DVARS above ``std_dvars_threshold``,
#:   then also the segments of fewer than ``scrub`` volumes left between them;
#: * non-steady-state volumes (``non_steady_state_outlier*`` columns) are always
#:   censored by these three;
#: * ``demean``: confounds centred on the kept volumes.
#:
#: ``highvariance`` (this project's default, the reference example's): the
#: ``n_high_variance_confounds`` high-variance confounds of the image
#: (``high_variance_percentile``) plus the file columns listed in
#: ``confound_columns``; no censoring.
STRATEGIES: dict[str, dict[str, Any]] = {
    "simple": {
        "strategy": ["high_pass", "motion", "wm_csf"],
        "motion": "full",
        "wm_csf": "basic",
        "demean": True,
    },
    "scrubbing": {
        "strategy": ["high_pass", "motion", "wm_csf", "scrub"],
        "motion": "full",
        "wm_csf": "full",
        "scrub": 5,
        "fd_threshold": 0.5,
        "std_dvars_threshold": 1.5,
        "demean": True,
    },
    "compcor": {
        "strategy": ["high_pass", "motion", "compcor"],
        "motion": "full",
        "compcor": "anat_combined",
        "n_compcor": "all",
        "demean": True,
    },
    "highvariance": {
        "strategy": ["high_variance"],
        "n_high_variance_confounds": 5,
        "high_variance_percentile": 2.0,
        "confound_columns": [],
        "demean": False,
    },
}

_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_EXPANSIONS = {
    "basic": (),
    "derivatives": ("derivative1",),
    "power2": ("power2",),
    "full": ("derivative1", "power2", "derivative1_power2"),
}


def _expanded(bases: Sequence[str], model: str) -> list[str]:
    return [*bases, *(f"{b}_{s}" for b in bases for s in _EXPANSIONS[model])]


@dataclass(frozen=True)
class Denoising:
    """What a strategy takes from one scan's confounds file.

    Attributes
    ----------
    confounds : DataFrame, shape (n_volumes, n_confounds)
        The regressors, as nilearn's ``load_confounds_strategy`` returns them:
        columns sorted by name, a first-row NaN (derivatives) replaced by the
        second row's value, centred on the kept volumes. For ``highvariance``,
        the ``confound_columns`` as in the file (same first-row rule); the image's
        high-variance confounds are added by the caller.
    sample_mask : ndarray of int or None
        Indices of the kept volumes, shape (n_kept,); None when the strategy
        censors nothing (nilearn's convention).
    censored : list of int
        Indices of the censored volumes (sorted).
    outliers : dict
        ``{"non_steady_state": [...], "motion": [...]}``: why volumes were
        censored (``motion`` includes the short segments removed with them).
    parameters : dict
        ``{"name": strategy, **STRATEGIES[strategy]}`` (plus the columns asked
        for ``highvariance``), JSON-serialisable.
    n_volumes : int
    """

    confounds: pd.DataFrame
    sample_mask: np.ndarray | None
    censored: list[int]
    outliers: dict[str, list[int]]
    parameters: dict[str, Any]
    n_volumes: int

    @property
    def kept(self) -> np.ndarray:
        """Indices of the kept volumes, shape (n_kept,) (all when no censoring)."""
        if self.sample_mask is None:
            return np.arange(self.n_volumes)
        return self.sample_mask


def read_fmriprep_confounds(path: PathLike, n_volumes: int) -> pd.DataFrame:
    """Read an fMRIPrep confounds TSV (header row, ``n/a`` for missing values).

    Returns
    -------
    DataFrame, shape (n_volumes, n_columns)
        Numeric columns as float64; other columns kept as read.

    Raises
    ------
    InputError
        Unreadable file, a headerless or camelCase table (fMRIPrep < 1.2), or a
        row count different from ``n_volumes``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "confounds file not found")
    try:
        table = pd.read_csv(path, sep="\t", encoding="utf-8")
    except Exception as error:  # pandas raises many kinds on bad files
        raise InputError(path, f"cannot read confounds table ({error})") from error
    columns = [str(c) for c in table.columns]
    if not columns or any(_is_number(c) for c in columns):
        raise InputError(path, "no header row: not an fMRIPrep (>= 1.2) confounds file")
    if any(re.search(r"[a-z][A-Z]", c) for c in columns):
        raise InputError(
            path, "camelCase column names: fMRIPrep < 1.2 output is not supported"
        )
    if len(table) != n_volumes:
        raise InputError(
            path,
            f"{len(table)} rows of confounds but the functional image has "
            f"{n_volumes} volumes",
        )
    return table


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _require(path: Path, table: pd.DataFrame, columns: Sequence[str], why: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(
            path,
            f"column(s) {', '.join(missing)} missing, needed by {why}",
        )


def _numeric(path: Path, table: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    values = np.empty((len(table), len(columns)))
    for j, column in enumerate(columns):
        numbers = pd.to_numeric(table[column], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        text = table[column].notna() & np.isnan(numbers)
        if text.any():
            row = int(np.flatnonzero(text.to_numpy())[0])
            raise InputError(
                path,
                f"non-numeric value {table[column].iloc[row]!r} in column "
                f"{column!r} at data row {row + 1}",
            )
        values[:, j] = numbers
    return values


def _fill_first_row(path: Path, values: np.ndarray, columns: Sequence[str]) -> None:
    """Replace NaN in row 0 by row 1 (fMRIPrep's derivatives); other NaN: error."""
    if len(values) > 1:
        first = np.isnan(values[0])
        values[0, first] = values[1, first]
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = (int(i[0]) for i in np.nonzero(bad))
        raise InputError(
            path,
            f"missing or infinite value in column {columns[column]!r} at data row "
            f"{row + 1}",
        )


def _scrub_segments(outliers: np.ndarray, n_volumes: int, scrub: int) -> np.ndarray:
    """Outliers plus the runs of fewer than ``scrub`` volumes they leave.

    The leading run (before the first outlier), the trailing run (after the
    last) and every run between two outliers are censored when shorter than
    ``scrub`` volumes (nilearn's ``optimize_scrub``).
    """
    if scrub <= 0 or outliers.size == 0:
        return outliers
    censored = np.zeros(n_volumes, dtype=bool)
    censored[outliers] = True
    if outliers[0] < scrub:
        censored[: outliers[0]] = True
    if n_volumes - 1 - outliers[-1] < scrub:
        censored[outliers[-1] :] = True
    for left, right in itertools.pairwise(outliers):
        if 1 < right - left <= scrub:
            censored[left + 1 : right] = True
    return np.flatnonzero(censored)


def _compcor_columns(path: Path, parameters: dict[str, Any]) -> list[str]:
    """Anatomical CompCor columns of the combined mask, from the confounds JSON."""
    if parameters["compcor"] != "anat_combined":
        raise ValueError(f"compcor={parameters['compcor']!r} is not supported")
    json_path = path.with_suffix(".json")
    try:
        meta = json.loads(json_path.read_text())
    except OSError as error:
        raise InputError(
            json_path,
            "confounds JSON not found: the compcor strategy needs it (fMRIPrep "
            ">= 1.4) to tell the components of the combined WM+CSF mask",
        ) from error
    except ValueError as error:
        raise InputError(json_path, f"not valid JSON ({error})") from error
    # As nilearn: the components are a_comp_cor_00, 01, ... as many as the JSON
    # has a_comp_cor entries, those of the "combined" mask kept in that order.
    count = sum("a_comp_cor" in key for key in meta)
    columns = []
    for index in range(count):
        name = f"a_comp_cor_{index:02d}"
        entry = meta.get(name)
        if not isinstance(entry, dict) or "Mask" not in entry:
            raise InputError(json_path, f"no 'Mask' entry for {name}")
        if entry["Mask"] == "combined":
            columns.append(name)
    n_compcor = parameters["n_compcor"]
    if n_compcor != "all":
        columns = columns[: int(n_compcor)]
    if not columns:
        raise InputError(
            json_path, "no anatomical CompCor component of the combined mask"
        )
    return columns


def denoise(
    confounds_path: PathLike,
    strategy: str,
    n_volumes: int,
    *,
    confound_columns: Sequence[str] = (),
) -> Denoising:
    """Confounds and censoring of one scan by a named strategy.

    Parameters
    ----------
    confounds_path : path-like
        The scan's fMRIPrep confounds TSV (its JSON beside it for ``compcor``).
    strategy : str
        A key of :data:`STRATEGIES`.
    n_volumes : int
        Number of volumes of the BOLD image: the table must have as many rows.
    confound_columns : sequence of str
        ``highvariance`` only: file columns regressed out besides the image's
        high-variance confounds (e.g. ``["trans_x", ..., "rot_z"]``).

    Returns
    -------
    Denoising

    Raises
    ------
    InputError
        Unknown strategy (the message lists the valid ones), unreadable table,
        wrong row count, required columns missing (named), non-numeric or
        missing values, ``confound_columns`` given to a preset.
    """
    path = Path(confounds_path)
    if strategy not in STRATEGIES:
        raise InputError(
            path,
            f"unknown denoising strategy {strategy!r}; valid strategies: "
            f"{', '.join(STRATEGIES)}",
        )
    parameters = {"name": strategy, **json.loads(json.dumps(STRATEGIES[strategy]))}
    table = read_fmriprep_confounds(path, n_volumes)
    if strategy == "highvariance":
        columns = list(dict.fromkeys(confound_columns))
        parameters["confound_columns"] = columns
        _require(path, table, columns, "confound_columns")
        values = _numeric(path, table, columns)
        _fill_first_row(path, values, columns)
        return Denoising(
            confounds=pd.DataFrame(values, columns=columns),
            sample_mask=None,
            censored=[],
            outliers={"non_steady_state": [], "motion": []},
            parameters=parameters,
            n_volumes=n_volumes,
        )
    if confound_columns:
        raise InputError(
            path,
            f"confound_columns are for the highvariance strategy; the {strategy} "
            "strategy picks its own columns",
        )

    selected: list[str] = []
    steps = parameters["strategy"]
    if "high_pass" in steps:
        selected += [c for c in table.columns if "cosine" in c]
    if "motion" in steps:
        columns = _expanded(_MOTION, parameters["motion"])
        _require(path, table, columns, f"motion={parameters['motion']!r}")
        selected += columns
    if "wm_csf" in steps:
        columns = _expanded(("csf", "white_matter"), parameters["wm_csf"])
        _require(path, table, columns, f"wm_csf={parameters['wm_csf']!r}")
        selected += columns
    if "compcor" in steps:
        columns = _compcor_columns(path, parameters)
        _require(path, table, columns, "compcor (columns named in its JSON)")
        selected += columns

    flagged = np.zeros(n_volumes, dtype=bool)
    steady = [c for c in table.columns if "non_steady_state" in c]
    has_outlier_columns = bool(steady)
    non_steady = np.empty(0, dtype=np.int64)
    if steady:
        non_steady = np.flatnonzero(_numeric(path, table, steady).sum(axis=1) != 0)
        flagged[non_steady] = True
    motion = np.empty(0, dtype=np.int64)
    if "scrub" in steps:
        _require(path, table, ["framewise_displacement", "std_dvars"], "scrubbing")
        fd, dvars = _numeric(path, table, ["framewise_displacement", "std_dvars"]).T
        with np.errstate(invalid="ignore"):
            high = (fd > parameters["fd_threshold"]) | (
                dvars > parameters["std_dvars_threshold"]
            )
        motion = _scrub_segments(np.flatnonzero(high), n_volumes, parameters["scrub"])
        has_outlier_columns = has_outlier_columns or motion.size > 0
        flagged[motion] = True

    columns = sorted(set(selected) - set(steady))
    values = _numeric(path, table, columns)
    _fill_first_row(path, values, columns)
    sample_mask = np.flatnonzero(~flagged) if has_outlier_columns else None
    if parameters["demean"] and columns:
        rows = values if sample_mask is None else values[sample_mask]
        if len(rows):
            values = values - rows.mean(axis=0)
    return Denoising(
        confounds=pd.DataFrame(values, columns=columns),
        sample_mask=sample_mask,
        censored=np.flatnonzero(flagged).tolist(),
        outliers={
            "non_steady_state": non_steady.tolist(),
            "motion": motion.tolist(),
        },
        parameters=parameters,
        n_volumes=n_volumes,
    )


# ---------------------------------------------------------------- per scan


@dataclass(frozen=True)
class ScanSignals:
    """One scan's cleaned region signals and what was done to get them.

    Attributes
    ----------
    signals : ndarray, shape (n_rows, n_regions)
        Cleaned signals of the kept volumes (of every volume when an excluded
        scan's kept volumes are too few to clean).
    regions : list of str
        Region names, in map order.
    kept : ndarray, shape (n_kept,)
        Indices of the kept volumes (the sample mask; all when no censoring).
    censored : list of int
        Indices of the censored volumes.
    n_volumes : int
    t_r : float
    confound_names : list of str
        Columns regressed out (``highvariance01``.. first for ``highvariance``).
    denoising : Denoising
    coverage : ndarray, shape (n_regions,) or None
        Fraction of each map inside the field of view.
    excluded : str or None
        Why the scan is left out of the group (too few volumes kept or degrees
        of freedom left), or None.
    cleaning : Cleaned
        Degrees of freedom and dropped confound columns of the cleaning.
    outliers : dict
        Why volumes were censored (the strategy's reasons, plus
        ``constant_volume``).
    censoring_applied : bool
        False when an excluded scan was cleaned uncensored.
    warnings : list of str
        Caveats to put in the sidecar.
    settings : CleaningSettings
        How it was cleaned.
    t_r_source : str
        Where ``t_r`` came from (see :class:`sparseconn.subjects.RepetitionTime`).
    region_table : DataFrame or None
        Which regions the group stage can use, and why not
        (:func:`sparseconn.regions.scan_region_table`).
    """

    signals: np.ndarray | None
    regions: list[str]
    kept: np.ndarray
    censored: list[int]
    n_volumes: int
    t_r: float
    confound_names: list[str]
    denoising: Denoising
    coverage: np.ndarray | None = None
    excluded: str | None = None
    cleaning: Cleaned | None = None
    outliers: dict[str, list[int]] = field(default_factory=dict)
    censoring_applied: bool = True
    warnings: list[str] = field(default_factory=list)
    t_r_source: str = ""
    settings: CleaningSettings | None = None
    region_table: pd.DataFrame | None = None

    @property
    def n_kept(self) -> int:
        """Number of kept volumes."""
        return int(self.kept.size)


def exclusion_reason(
    n_volumes: int,
    n_kept: int,
    n_regressors: int,
    t_r: float,
    cleaning: CleaningSettings,
) -> str | None:
    """Why a run is left out of the group stage, or None.

    Too few volumes kept after censoring (``cleaning.min_kept_fraction``), or
    fewer than ``cleaning.min_degrees_of_freedom`` left once ``n_regressors``
    confound columns, the
    filter and detrending have taken theirs from the kept volumes. Counting
    columns (not their rank) errs on the side of exclusion: cleaning can only
    leave as many degrees of freedom or more. Decided from the confounds file
    and the header alone, so the workflow decides it before any job runs.
    """
    from sparseconn.signals import filter_degrees_of_freedom

    if n_kept == 0 or n_kept < cleaning.min_kept_fraction * n_volumes:
        return (
            f"{n_kept} of {n_volumes} volumes kept after censoring, fewer than "
            f"min_volumes {cleaning.min_kept_fraction:.0%}"
        )
    remaining = (
        n_kept
        - (2 if cleaning.detrend else 1)
        - filter_degrees_of_freedom(n_kept, t_r, cleaning.high_pass, cleaning.low_pass)
        - n_regressors
    )
    if remaining < cleaning.min_degrees_of_freedom:
        return (
            f"{n_regressors} confound regressors for {n_kept} kept volumes leave "
            f"{remaining} degrees of freedom, fewer than min_degrees_of_freedom "
            f"{cleaning.min_degrees_of_freedom}"
        )
    return None


def bold_t_r(
    bold: PathLike,
    header_t_r: float | None,
    t_r: float | None = None,
    *,
    unitless_header_t_r: float | None = None,
) -> RepetitionTime:
    """Repetition time of a BOLD run: ``t_r``, else its JSON sidecar, else header.

    The sidecar is ``*_bold.json`` beside the image (``RepetitionTime``, s); a
    value given or found in the sidecar that disagrees with the header's by more
    than 0.1 % is an error, unless the header does not state its time unit
    (``unitless_header_t_r``, see :func:`sparseconn.subjects.resolve_repetition_time`).

    Raises
    ------
    InputError
        Disagreement, unreadable sidecar, or no repetition time anywhere.
    """
    bold = Path(bold)
    sidecar = bold.parent / (bold.name[: -len(".nii.gz")] + ".json")
    sidecar_t_r = None
    if t_r is None and sidecar.is_file():
        try:
            sidecar_t_r = json.loads(sidecar.read_text()).get("RepetitionTime")
        except (OSError, ValueError) as error:
            raise InputError(sidecar, f"unreadable JSON sidecar ({error})") from error
        if sidecar_t_r is not None and not isinstance(sidecar_t_r, int | float):
            raise InputError(sidecar, f"RepetitionTime {sidecar_t_r!r} is not a number")
    return resolve_repetition_time(
        bold,
        header_t_r,
        [(t_r, "config (t_r)"), (sidecar_t_r, "BOLD JSON sidecar (RepetitionTime)")],
        unitless_header_t_r=unitless_header_t_r,
        hint=f"set RepetitionTime in {sidecar.name} or t_r in the config",
    )


def clean_scan_signals(
    bold: PathLike,
    maps: PathLike,
    confounds: PathLike,
    *,
    labels: PathLike | None = None,
    **options: Any,
) -> ScanSignals:
    """:func:`clean_scan_atlases` with one atlas: ``maps`` (any kind) and ``labels``."""
    from sparseconn.regions import AtlasSpec

    spec = AtlasSpec("atlas", str(maps), None if labels is None else str(labels))
    return clean_scan_atlases(bold, [spec], confounds, **options)[0]


def clean_scan_atlases(
    bold: PathLike,
    atlases: Sequence[AtlasSpec],
    confounds: PathLike,
    *,
    strategy: str = "simple",
    confound_columns: Sequence[str] = (),
    t_r: float | None = None,
    cleaning: CleaningSettings | None = None,
    n_high_variance_confounds: int = 5,
    high_variance_percentile: float = 2.0,
    min_region_coverage: float = 0.5,
) -> list[ScanSignals]:
    """Extract and clean the region signals of every atlas of one fMRIPrep scan.

    One streamed decompression of ``bold`` feeds every atlas (and the
    high-variance confounds); each atlas's signals are cleaned alike. For a
    maps atlas, equal to nilearn's ``NiftiMapsMasker(maps, resampling_target="maps",
    detrend=detrend, high_pass=high_pass, low_pass=low_pass, t_r=t_r,
    standardize=standardize).fit_transform(bold, confounds=conf,
    sample_mask=mask)`` with ``conf, mask = load_confounds_strategy(bold,
    denoise_strategy=strategy)`` (for a label atlas, ``NiftiLabelsMasker``); for
    ``highvariance``, ``conf`` is the image's
    high-variance confounds then ``confound_columns`` and there is no mask.
    Except with volumes censored at both ends of the scan, where nilearn 0.13.1
    interpolates the wrong volumes: the rows are always exactly the kept volumes
    (see :func:`sparseconn.signals.filtered_volumes`).

    Parameters
    ----------
    bold : path-like
        ``*_desc-preproc_bold.nii.gz`` (4D).
    atlases : sequence of AtlasSpec
        The atlases (see :func:`sparseconn.regions.load`).
    confounds : path-like
        The scan's fMRIPrep confounds TSV.
    strategy : str
        A key of :data:`STRATEGIES`.
    confound_columns : sequence of str
        File columns added to the high-variance confounds (``highvariance``).
    t_r : float, optional
        Repetition time (s); default the BOLD JSON sidecar, else the header.
    cleaning : CleaningSettings, optional
        How to clean (default: the config's defaults), and the minimum fraction
        of volumes and degrees of freedom a scan must keep: a scan keeping fewer
        (see :func:`exclusion_reason`) is left out
        of the group stage (``excluded`` says why); its signals are still
        computed, for inspection (uncensored when its kept volumes are too few).
        Constant volumes (dropouts) are censored too; if that alone pushes a
        scan below either minimum, it is an error (the workflow decided the
        group before any job ran).
    n_high_variance_confounds, high_variance_percentile
        ``highvariance`` only.
    min_region_coverage : float
        Regions less covered by the field of view are unusable
        (:func:`sparseconn.regions.scan_region_table`).

    Returns
    -------
    list of ScanSignals, one per atlas in ``atlases``'s order

    Raises
    ------
    InputError
        Bad image, confounds or atlas (the message names the file), or a cleaning
        that cannot run (e.g. too few volumes to filter).
    """
    from sparseconn import regions
    from sparseconn.signals import CleaningSettings, clean_scan, extract_signals

    settings = cleaning or CleaningSettings()
    if not 0 <= settings.min_kept_fraction <= 1:
        raise ValueError(
            f"min_kept_fraction={settings.min_kept_fraction} must be in [0, 1]"
        )
    info = read_func_info(bold)
    repetition, t_r_source = bold_t_r(
        bold, info.t_r, t_r, unitless_header_t_r=info.unitless_t_r
    )
    denoising = denoise(
        confounds, strategy, info.n_volumes, confound_columns=confound_columns
    )
    n_volumes = info.n_volumes
    n_regressors = denoising.confounds.shape[1]
    if strategy == "highvariance":
        n_regressors += n_high_variance_confounds
    excluded = exclusion_reason(
        n_volumes, denoising.kept.size, n_regressors, repetition, settings
    )
    loaded = [regions.load(spec) for spec in atlases]
    collector = None
    if strategy == "highvariance":
        from sparseconn.confounds import HighVarianceCollector, high_variance_table

        collector = HighVarianceCollector(
            info, n_high_variance_confounds, high_variance_percentile
        )
    # One decompression of the image for every atlas's signals and the confounds.
    extractors = regions.extractors_for(info, loaded)
    loaded = [regions.without_maps(atlas) for atlas in loaded]
    extracted = extract_signals(
        info, extractors, on_chunk=None if collector is None else collector.add
    )
    del extractors
    tables = [denoising.confounds]
    if collector is not None:
        tables.insert(0, high_variance_table(collector.confounds()))
    confound_frame = pd.concat(tables, axis=1)
    matrix = confound_frame.to_numpy(dtype=np.float64)
    if excluded is not None:
        logger.warning("%s: left out of the group stage: %s", bold, excluded)
    results = []
    for atlas, (signals, coverage, constant) in zip(loaded, extracted, strict=True):
        scan = clean_scan(
            signals,
            constant,
            matrix if matrix.shape[1] else None,
            repetition,
            settings,
            source=str(bold),
            remedy="leave the run out (filters run, session, participant_label)",
            sample_mask=denoising.sample_mask,
            reasons=denoising.outliers,
            excluded=excluded,
        )
        results.append(
            ScanSignals(
                signals=scan.cleaned.signals,
                regions=atlas.names,
                kept=scan.kept,
                censored=scan.censored,
                n_volumes=n_volumes,
                t_r=repetition,
                t_r_source=t_r_source,
                confound_names=list(confound_frame.columns),
                denoising=denoising,
                coverage=coverage,
                excluded=excluded,
                cleaning=scan.cleaned,
                outliers=scan.reasons,
                censoring_applied=scan.censoring_applied,
                warnings=[*scan.warnings, *atlas.notes],
                settings=settings,
                region_table=regions.scan_region_table(
                    atlas, coverage, signals[scan.kept], min_region_coverage
                ),
            )
        )
    return results
