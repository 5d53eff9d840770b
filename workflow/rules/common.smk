# Helpers of the workflow: subjects, atlas, file names and input functions (a
# rule's code hash is rule_code("<rule>"), from the package). No rules here. The config has already been
# checked and completed with the schema's defaults by the Snakefile.

import dataclasses
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import pandas as pd
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import sparseconn
from sparseconn.workflow import adapters
from sparseconn.workflow.errors import exit_on_input_error, schema_error
from sparseconn.workflow.provenance import rule_code
from sparseconn.configuration import check_atlas_space
from sparseconn import fetch
from sparseconn.bids import output_name, parse_stem
from sparseconn.errors import InputError
from sparseconn.subjects import check_subject_id, match_label, read_subjects_sheet

DATASET = config["dataset"]
RESULTS = os.path.normpath(config["results_dir"])
# Each job's log and Snakemake benchmark, kept with the results they belong to
# (two results_dir in one folder keep their own).
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
RESOURCES = os.path.normpath(config["resources_dir"])
PKG_VERSION = sparseconn.__version__

# Generated inputs (dataset synthetic).
SYNTHETIC_DIR = f"{RESOURCES}/synthetic"
SYNTHETIC_ATLAS = {
    "maps": f"{SYNTHETIC_DIR}/atlas_maps.nii.gz",
    "labels": f"{SYNTHETIC_DIR}/atlas_labels.csv",
    "truth": f"{SYNTHETIC_DIR}/atlas_truth.npz",
}
SYNTHETIC_SUBJECT = {
    "func": f"{SYNTHETIC_DIR}/sub-{{subject}}_bold.nii.gz",
    "confounds": f"{SYNTHETIC_DIR}/sub-{{subject}}_desc-confounds_timeseries.tsv",
    "truth": f"{SYNTHETIC_DIR}/sub-{{subject}}_truth.npz",
}

# Downloads (dataset adhd): the MSDL atlas, then one folder per subject holding
# the two files of its archive (named as in the archive), under {resources_dir}/adhd/.
ADHD_DIR = f"{RESOURCES}/adhd"
ADHD_ATLAS = {
    "maps": f"{ADHD_DIR}/msdl/msdl_rois.nii",
    "labels": f"{ADHD_DIR}/msdl/msdl_rois_labels.csv",
}
ADHD_SUBJECT = {
    "func": f"{ADHD_DIR}/{{subject}}/{{subject}}_rest_tshift_RPI_voreg_mni.nii.gz",
    "confounds": f"{ADHD_DIR}/{{subject}}/{{subject}}_regressors.csv",
}
ADHD_PHENOTYPES = f"{ADHD_DIR}/{fetch.ADHD_PHENOTYPES_MEMBER}"
# Archives are downloaded here (resumable .part files), and deleted once extracted.
ADHD_DOWNLOADS = f"{ADHD_DIR}/downloads"
# SHA-256 of every archive, recorded at its first download and verified afterwards.
ADHD_LOCK = f"{ADHD_DIR}/checksums.lock.json"
# Sheet cells that are http(s) URLs are downloaded here, one folder per subject.
SHEET_DOWNLOAD_DIR = f"{RESOURCES}/sheet"
SHEET_LOCK = f"{SHEET_DOWNLOAD_DIR}/checksums.lock.json"
# (subject, column) -> URL of the sheet's cells downloaded by rule fetch_sheet_file.
SHEET_URLS = {}


wildcard_constraints:
    subject="[A-Za-z0-9]+",


def subject_file(suffix):
    """Path of a per-subject result: ``sub-{subject}/func/sub-{subject}_<suffix>``."""
    return f"{RESULTS}/sub-{{subject}}/func/sub-{{subject}}_{suffix}"


GROUP_DIR = f"{RESULTS}/group"


def relmat(stat, desc):
    """Per-subject relmat TSV path (xcp_d layout) of statistic ``stat``."""
    return subject_file(f"atlas-{ATLAS_NAME}_stat-{stat}_desc-{desc}_relmat.tsv")


def _local_path(location, source, where, subject, column):
    """A sheet location as a local path.

    ``file://`` URLs are converted to paths; ``http(s)://`` URLs become the path
    rule fetch_sheet_file downloads them to
    (``{resources_dir}/sheet/<subject>/<column>/<file name>``).
    """
    if location is None:
        return None
    parsed = urlparse(location)
    if parsed.scheme.lower() in ("http", "https"):
        name = posixpath.basename(unquote(parsed.path))
        name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
        if column == "func" and not name.endswith((".nii", ".nii.gz")):
            raise InputError(
                source,
                f"{where}func URL {location!r} does not name a .nii or .nii.gz "
                "file; download it and give its path",
            )
        name = name or "confounds.tsv"
        SHEET_URLS[subject, column] = location
        return f"{SHEET_DOWNLOAD_DIR}/{subject}/{column}/{name}"
    if parsed.scheme.lower() == "file":
        path = url2pathname(parsed.path)
        if not os.path.isfile(path):
            raise InputError(source, f"{where}file {location!r} does not exist")
        return path
    return location


def _load_sheet(path):
    """Rows of the subjects sheet by subject, checked and validated."""
    rows = read_subjects_sheet(path)
    frame = pd.DataFrame([dataclasses.asdict(row) for row in rows])
    try:
        validate(frame, "../schemas/subjects.schema.yaml", set_default=False)
    except WorkflowError as error:
        raise schema_error(path, error, [row.subject for row in rows]) from None
    sheet = {}
    for row in rows:
        where = f"subject {row.subject!r}: "
        sheet[row.subject] = dataclasses.replace(
            row,
            func=_local_path(row.func, path, where, row.subject, "func"),
            confounds=_local_path(row.confounds, path, where, row.subject, "confounds"),
        )
    return sheet


def _load_subjects():
    """Subjects (sorted), the sheet's rows (dataset sheet) and excluded subjects.

    Dataset fmriprep has no per-subject rules (its unit of work is the run): no
    subjects here, see _load_fmriprep.
    """
    if DATASET == "fmriprep":
        return [], {}, []
    if DATASET == "adhd":
        try:
            subjects = fetch.adhd_subjects(config["n_subjects"])
        except ValueError as error:
            raise InputError(CONFIG_SOURCE, str(error)) from None
        return sorted(check_subject_id(s, CONFIG_SOURCE) for s in subjects), {}, []
    if DATASET == "synthetic":
        from sparseconn.synthetic import subject_ids

        subjects = sorted(
            check_subject_id(s, CONFIG_SOURCE)
            for s in subject_ids(config["n_subjects"])
        )
        return subjects, {}, []
    sheet = _load_sheet(config["subjects_sheet"])
    excluded = [s for s, row in sheet.items() if row.exclude]
    if len(excluded) == len(sheet):
        raise InputError(
            config["subjects_sheet"],
            "every subject is excluded; nothing is left for the group stage",
        )
    return sorted(sheet), sheet, excluded


def _load_atlas():
    """Atlas maps, labels (or None) and name for the dataset."""
    if DATASET == "synthetic":
        name = config["atlas_name"] or "synthetic"
        return SYNTHETIC_ATLAS["maps"], SYNTHETIC_ATLAS["labels"], name
    if DATASET == "adhd" or (DATASET == "fmriprep" and not config["atlas_maps"]):
        name = config["atlas_name"] or "MSDL"
        return ADHD_ATLAS["maps"], ADHD_ATLAS["labels"], name
    maps, labels = config["atlas_maps"], config["atlas_labels"]
    if maps is None:
        raise InputError(
            CONFIG_SOURCE,
            "atlas_maps is required with dataset 'sheet' (a 4D NIfTI image of "
            "probabilistic maps)",
        )
    for key, value in (("atlas_maps", maps), ("atlas_labels", labels)):
        if value is not None and not os.path.isfile(value):
            raise InputError(CONFIG_SOURCE, f"{key} file {value!r} does not exist")
    return maps, labels, config["atlas_name"] or "custom"


def _plot_subject():
    """The subject named by ``plot_subject``, else the first one not excluded.

    Dataset fmriprep: the first element of the group stage of that participant.
    """
    wanted = config["plot_subject"]
    if wanted is None:
        return GROUP_SUBJECTS[0]
    if DATASET == "fmriprep":
        participants = sorted(set(UNIT_PARTICIPANT.values()))
        label = match_label(wanted, participants, "plot_subject", CONFIG_SOURCE)
        matches = [u for u in GROUP_SUBJECTS if UNIT_PARTICIPANT[u] == label]
        if not matches:
            raise InputError(
                CONFIG_SOURCE,
                f"plot_subject {wanted!r} is not a participant of the group stage "
                f"({', '.join(participants)})",
            )
        return matches[0]
    label = match_label(wanted, SUBJECTS, "plot_subject", CONFIG_SOURCE)
    if label is None:
        raise InputError(
            CONFIG_SOURCE,
            f"plot_subject {wanted!r} is not one of the subjects "
            f"({', '.join(SUBJECTS)})",
        )
    return label


def _adhd_sources():
    """Where dataset adhd is downloaded from, and the known checksums.

    The canonical hosts are written once, in config/adhd.yaml; the config's
    ``adhd`` block overrides them (a null URL keeps the canonical one). Read
    for every dataset (the download rules are always defined) but required
    only by dataset adhd.
    """
    canonical_file = Path(workflow.basedir, "config", "adhd.yaml")
    try:
        canonical = yaml.safe_load(canonical_file.read_text())["adhd"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        canonical = {}
    given = config["adhd"]
    sources = {
        key: given.get(key) or canonical.get(key) for key in ("base_url", "atlas_url")
    }
    sources["checksums"] = {
        **(canonical.get("checksums") or {}),
        **(given.get("checksums") or {}),
    }
    for name, value in sources["checksums"].items():
        try:
            fetch.parse_checksum(value)
        except ValueError as error:
            raise InputError(CONFIG_SOURCE, f"adhd.checksums.{name}: {error}")
    missing = [key for key in ("base_url", "atlas_url") if sources[key] is None]
    if DATASET == "adhd" and missing:
        raise InputError(
            CONFIG_SOURCE,
            f"adhd.{missing[0]} is not set and {canonical_file} gives none; "
            "run with --configfile config/adhd.yaml or set it to a mirror",
        )
    return sources


def _adhd_url(relative):
    """A URL below adhd.base_url (None when unset, for datasets other than adhd)."""
    base = ADHD_SOURCES["base_url"]
    return None if base is None else fetch.join_url(base, relative)


# ---- Dataset fmriprep: one unit of work per preprocessed run ("scan", named by
# its BIDS entities); the group stage's elements ("units") are a subject's (and
# session's) runs concatenated (concatenate_runs) or each run alone.
DENOISE_STRATEGY = config["denoise_strategy"] or (
    "simple" if DATASET == "fmriprep" else "highvariance"
)
# scan name -> Scan; scan name -> Denoising (censoring is known from the
# confounds file alone, so exclusions are decided here, before any job runs).
FMRIPREP_SCANS = {}
FMRIPREP_DENOISING = {}
# scan name -> why it is left out of the group stage.
EXCLUDED_SCANS = {}
# unit -> its kept scans (in order); unit -> participant label.
UNIT_SCANS = {}
UNIT_PARTICIPANT = {}


def scan_file(name, suffix, **entities):
    """Path of a per-run (or per-unit) result of dataset fmriprep.

    ``sub-01_ses-1_task-rest_run-1_space-X_res-2``, ``timeseries.tsv``, atlas A ->
    ``{results_dir}/sub-01/ses-1/func/sub-01_ses-1_task-rest_run-1_space-X_atlas-A_res-2_timeseries.tsv``
    (entities in BIDS order).
    """
    found = dict(parse_stem(name))
    parts = [f"{key}-{found[key]}" for key in ("sub", "ses") if key in found]
    return posixpath.join(
        RESULTS, *parts, "func", output_name(name, suffix, **entities)
    )


def timeseries_stem(name):
    """Stem (file name without suffix) of a run's time series, atlas included."""
    return output_name(name, "", atlas=ATLAS_NAME)


# Config min_volumes ("50%") as a fraction.
MIN_KEPT_FRACTION = float(config["min_volumes"].rstrip("%")) / 100.0


def _load_fmriprep():
    """Find the runs, censor them, decide exclusions and group them into units."""
    from sparseconn import fmriprep
    from sparseconn.io import read_func_info

    if not config["fmriprep_dir"]:
        raise InputError(
            CONFIG_SOURCE, "fmriprep_dir is required with dataset 'fmriprep'"
        )
    check_atlas_space(
        config["space"],
        config["atlas_space"],
        own_atlas=bool(config["atlas_maps"]),
        source=CONFIG_SOURCE,
    )
    scans = fmriprep.find_scans(
        config["fmriprep_dir"],
        participant_label=config["participant_label"] or None,
        task=config["task"],
        space=config["space"],
        session=config["session"],
        run=config["run"],
        res=config["res"],
    )
    if DENOISE_STRATEGY not in fmriprep.STRATEGIES:
        raise InputError(
            CONFIG_SOURCE,
            f"denoise_strategy {DENOISE_STRATEGY!r} is not one of "
            f"{', '.join(fmriprep.STRATEGIES)}",
        )
    minimum = MIN_KEPT_FRACTION
    by_subject = {}
    for scan in scans:
        info = read_func_info(scan.bold)
        denoising = fmriprep.denoise(
            scan.confounds,
            DENOISE_STRATEGY,
            info.n_volumes,
            confound_columns=(
                config["confound_columns"] if DENOISE_STRATEGY == "highvariance" else ()
            ),
        )
        FMRIPREP_SCANS[scan.name] = scan
        FMRIPREP_DENOISING[scan.name] = denoising
        n_regressors = denoising.confounds.shape[1]
        if DENOISE_STRATEGY == "highvariance":
            n_regressors += config["n_high_variance_confounds"]
        reason = fmriprep.exclusion_reason(
            info.n_volumes,
            denoising.kept.size,
            n_regressors,
            fmriprep.bold_t_r(
                scan.bold,
                info.t_r,
                config["t_r"],
                unitless_header_t_r=info.unitless_t_r,
            ).seconds,
            high_pass=config["high_pass"],
            low_pass=config["low_pass"],
            detrend=config["detrend"],
            min_kept_fraction=minimum,
            min_degrees_of_freedom=config["min_degrees_of_freedom"],
        )
        if reason is not None:
            EXCLUDED_SCANS[scan.name] = reason
        by_subject.setdefault(scan.subject, []).append(scan)
    for subject, subject_scans in by_subject.items():
        if all(scan.name in EXCLUDED_SCANS for scan in subject_scans):
            first = subject_scans[0]
            raise InputError(
                first.confounds,
                f"every run of sub-{subject} is left out of the group stage "
                f"({EXCLUDED_SCANS[first.name]}); leave the participant out "
                "(participant_label), or censor or regress less",
            )
        for scan in subject_scans:
            if scan.name in EXCLUDED_SCANS:
                continue
            unit = scan.name
            if config["concatenate_runs"]:
                unit = "_".join(f"{k}-{v}" for k, v in scan.entities if k != "run")
            UNIT_SCANS.setdefault(unit, []).append(scan.name)
            UNIT_PARTICIPANT[unit] = subject


def fmriprep_scan(wildcards):
    """The Scan of a job (its time series' stem names it)."""
    return FMRIPREP_SCANS[SCAN_OF_STEM[wildcards.stem]]


def fmriprep_confounds_input(wildcards):
    """The run's confounds TSV, and its JSON (compcor reads the components there)."""
    scan = fmriprep_scan(wildcards)
    files = {"confounds": str(scan.confounds)}
    if DENOISE_STRATEGY == "compcor":
        files["confounds_json"] = str(scan.confounds_json)
    return files


def unit_label(unit):
    """A group element as named in figure file names (``sub-01`` or the unit)."""
    return unit if DATASET == "fmriprep" else f"sub-{unit}"


def unit_timeseries(unit):
    """Time-series TSVs of a group element (several runs when concatenated)."""
    if DATASET == "fmriprep":
        return [
            scan_file(name, "timeseries.tsv", atlas=ATLAS_NAME)
            for name in UNIT_SCANS[unit]
        ]
    return [subject_file(f"atlas-{ATLAS_NAME}_timeseries.tsv").format(subject=unit)]


def units_timeseries(units):
    """The time-series TSVs of ``units``, flat, and how many each unit has."""
    files = [unit_timeseries(unit) for unit in units]
    return [f for unit_files in files for f in unit_files], [len(f) for f in files]


def unit_relmat(unit, stat, desc):
    """Relmat TSV of a group element (xcp_d layout)."""
    entities = {"atlas": ATLAS_NAME, "stat": stat, "desc": desc}
    if DATASET == "fmriprep":
        return scan_file(unit, "relmat.tsv", **entities)
    return relmat(stat, desc).format(subject=unit)


with exit_on_input_error():
    ADHD_SOURCES = _adhd_sources()
    ADHD_PHENOTYPES_URL = _adhd_url(fetch.ADHD_PHENOTYPES_ARCHIVE)
    SUBJECTS, SHEET, EXCLUDED = _load_subjects()
    # Subjects of the group stage: all but the sheet's excluded ones (their
    # per-subject outputs are still built). Dataset fmriprep: its units.
    GROUP_SUBJECTS = [s for s in SUBJECTS if s not in EXCLUDED]
    ATLAS_MAPS, ATLAS_LABELS, ATLAS_NAME = _load_atlas()
    if DATASET == "fmriprep":
        _load_fmriprep()
        GROUP_SUBJECTS = sorted(UNIT_SCANS)
        if config["graph_lasso"]["per_subject"]:
            raise InputError(
                CONFIG_SOURCE,
                "graph_lasso.per_subject is not available with dataset 'fmriprep'",
            )
    elif DENOISE_STRATEGY != "highvariance":
        raise InputError(
            CONFIG_SOURCE,
            f"denoise_strategy {DENOISE_STRATEGY!r} needs fMRIPrep confounds "
            f"(dataset 'fmriprep'); dataset {DATASET!r} takes highvariance only",
        )
    PLOT_SUBJECT = _plot_subject()
    # Subjects fitted one by one by the graph lasso: all but the plotted one,
    # whose matrices come with the group .npz.
    OTHER_SUBJECTS_PATTERN = (
        "|".join(s for s in SUBJECTS if s != PLOT_SUBJECT) or "(?!)"
    )


def _dataset_links():
    """Folders the sidecars' ``Sources`` refer to: dataset name -> folder.

    ``""`` is the results themselves (BIDS URIs ``bids::...``); ``atlas`` the
    atlas's folder; then the input data's folder by dataset kind.
    """
    links = {"": RESULTS}
    if DATASET == "synthetic":
        links["synthetic"] = SYNTHETIC_DIR
    elif DATASET == "adhd":
        links["adhd"] = ADHD_DIR
    elif DATASET == "fmriprep":
        links["preprocessed"] = os.path.normpath(config["fmriprep_dir"])
    else:
        files = [f for row in SHEET.values() for f in (row.func, row.confounds) if f]
        links["sources"] = os.path.commonpath([os.path.abspath(f) for f in files])
    atlas = os.path.dirname(os.path.abspath(ATLAS_MAPS))
    if not any(
        atlas == os.path.abspath(folder)
        or atlas.startswith(os.path.abspath(folder) + os.sep)
        for name, folder in links.items()
        if name
    ):
        links["atlas"] = os.path.dirname(ATLAS_MAPS) or "."
    return links


DATASET_LINKS = _dataset_links()
# As written in dataset_description.json: relative to the results folder.
DATASET_LINKS_FROM_RESULTS = {
    name: os.path.relpath(folder, RESULTS).replace(os.sep, "/")
    for name, folder in DATASET_LINKS.items()
}


# Time-series stem -> scan name (the stem is the rule's wildcard: BIDS order puts
# the atlas inside the scan's entities, before res).
SCAN_OF_STEM = {timeseries_stem(name): name for name in FMRIPREP_SCANS}


# Inputs of rule all beyond the results (the phenotypic table of dataset adhd).
# Dataset fmriprep: every run's time series, those left out of the group too.
DATASET_TARGETS = [ADHD_PHENOTYPES] if DATASET == "adhd" else []
if DATASET == "fmriprep":
    DATASET_TARGETS = [
        scan_file(name, f"timeseries.{ext}", atlas=ATLAS_NAME)
        for name in FMRIPREP_SCANS
        for ext in ("tsv", "json")
    ]


def scan_sidecars():
    """Every scan's time-series sidecar (the group's and the excluded ones)."""
    if DATASET == "fmriprep":
        return [
            scan_file(name, "timeseries.json", atlas=ATLAS_NAME)
            for name in FMRIPREP_SCANS
        ]
    return [
        subject_file(f"atlas-{ATLAS_NAME}_timeseries.json").format(subject=subject)
        for subject in SUBJECTS
    ]


def scan_names():
    """Names of the scans of scan_sidecars(), in the same order."""
    if DATASET == "fmriprep":
        return list(FMRIPREP_SCANS)
    return [f"sub-{subject}" for subject in SUBJECTS]


def excluded_before_jobs():
    """Scans left out of the group stage before any job runs, with the reason."""
    if DATASET == "fmriprep":
        return dict(EXCLUDED_SCANS)
    return {f"sub-{s}": "excluded in the subjects sheet" for s in EXCLUDED}


def func_for(wildcards):
    """The subject's 4D image."""
    if DATASET == "synthetic":
        return SYNTHETIC_SUBJECT["func"].format(subject=wildcards.subject)
    if DATASET == "adhd":
        return ADHD_SUBJECT["func"].format(subject=wildcards.subject)
    return SHEET[wildcards.subject].func


def confounds_for(wildcards):
    """Confounds tables regressed out: high-variance ones, then the subject's file."""
    confounds = [
        subject_file("desc-highvariance_confounds.tsv").format(
            subject=wildcards.subject
        )
    ]
    if DATASET == "synthetic":
        confounds.append(SYNTHETIC_SUBJECT["confounds"].format(**wildcards))
    elif DATASET == "adhd":
        confounds.append(ADHD_SUBJECT["confounds"].format(**wildcards))
    elif SHEET[wildcards.subject].confounds is not None:
        confounds.append(SHEET[wildcards.subject].confounds)
    return confounds


def atlas_labels_input(wildcards):
    """The atlas labels file as a list (empty when there is none)."""
    return [] if ATLAS_LABELS is None else [ATLAS_LABELS]


def sheet_t_r_for(wildcards):
    """The repetition time given by the sheet for the subject, or None."""
    row = SHEET.get(wildcards.subject)
    return None if row is None else row.t_r


def config_t_r_for(wildcards):
    """The config's repetition time, for subjects without one in the sheet.

    Returned only where it is used, so that changing it reruns only those jobs.
    """
    return config["t_r"] if sheet_t_r_for(wildcards) is None else None


def adhd_archive(name):
    """Where an ADHD-40 or MSDL archive is downloaded (its lock-file key is its name)."""
    return f"{ADHD_DOWNLOADS}/{name}"


def adhd_subject_url(wildcards):
    """URL of a subject's archive: the base URL + ``<NITRC id>/adhd40_<id>.tgz``."""
    return _adhd_url(fetch.adhd_subject_archive(wildcards.subject))


def adhd_subject_download(wildcards):
    """Download path of a subject's archive."""
    return adhd_archive(f"adhd40_{wildcards.subject}.tgz")


def adhd_subject_members(wildcards):
    """Members of a subject's archive: {"func": ..., "confounds": ...}."""
    return fetch.adhd_subject_members(wildcards.subject)


def adhd_checksum(name):
    """The configured checksum of archive ``name`` (md5 or sha256), or None."""
    return ADHD_SOURCES["checksums"].get(name)


def adhd_subject_checksum(wildcards):
    """The configured checksum of a subject's archive, or None."""
    return adhd_checksum(f"adhd40_{wildcards.subject}.tgz")


def sheet_url(wildcards):
    """The URL of a sheet cell downloaded by rule fetch_sheet_file."""
    return SHEET_URLS[wildcards.subject, wildcards.column]


def synthetic_index(wildcards):
    """Index of a generated subject (its position among all generated ids)."""
    return SUBJECTS.index(wildcards.subject)
