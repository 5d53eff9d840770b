"""The inputs of a run, built once from the checked config: one class per dataset kind.

Everything the rules need to know when the workflow is read (subjects, their
files and repetition times, the group stage's elements and the scans left out of
it, the atlas, the plotted subject, the download sources) is computed here, once,
into an immutable value. ``workflow/rules/common.smk`` calls :func:`build_inputs`
and hands its answers to the rules; nothing here imports Snakemake.

Adding a dataset kind is adding a subclass of :class:`RunInputs` and an entry of
:data:`KINDS` (and the config schema's enum).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import yaml

from sparseconn import fetch
from sparseconn.errors import InputError
from sparseconn.regions import AtlasSpec
from sparseconn.signals import CleaningSettings
from sparseconn.subjects import Subject, check_subject_id, match_label
from sparseconn.workflow.paths import Paths, fill

#: Validates the subjects sheet's rows (a DataFrame) against its schema; given by
#: the workflow (Snakemake's ``validate``), raising InputError naming the sheet.
SheetValidator = Callable[[Any, str, Sequence[str]], None]


@dataclass(frozen=True)
class AdhdSources:
    """Where dataset adhd is downloaded from, and the checksums known for it."""

    base_url: str | None
    atlas_url: str | None
    checksums: Mapping[str, str]

    def url(self, relative: str) -> str | None:
        """A URL below ``base_url`` (None when unset)."""
        return (
            None if self.base_url is None else fetch.join_url(self.base_url, relative)
        )

    @property
    def phenotypes_url(self) -> str | None:
        return self.url(fetch.ADHD_PHENOTYPES_ARCHIVE)

    def subject_url(self, subject: str) -> str | None:
        """A subject's archive: the base URL + ``<NITRC id>/adhd40_<id>.tgz``."""
        return self.url(fetch.adhd_subject_archive(subject))


def _canonical_sources(
    name: str,
    config: Mapping[str, Any],
    basedir: str | Path,
    *,
    source: str,
    required: bool,
) -> tuple[dict[str, str | None], dict[str, str]]:
    """URLs and checksums of config ``name``, else of ``config/<name>.yaml``.

    A null URL keeps the canonical one; checksums are merged (the config's
    win). Raises InputError for a malformed checksum, and, when ``required``,
    for a URL set nowhere.
    """
    canonical_file = Path(basedir, "config", f"{name}.yaml")
    try:
        canonical = yaml.safe_load(canonical_file.read_text())[name]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        canonical = {}
    given = config[name]
    urls = {
        key: given.get(key) or canonical.get(key) for key in ("base_url", "atlas_url")
    }
    checksums = {**(canonical.get("checksums") or {}), **(given.get("checksums") or {})}
    for file_name, value in checksums.items():
        try:
            fetch.parse_checksum(value)
        except ValueError as error:
            raise InputError(source, f"{name}.checksums.{file_name}: {error}") from None
    missing = [key for key, url in urls.items() if url is None]
    if required and missing:
        raise InputError(
            source,
            f"{name}.{missing[0]} is not set and {canonical_file} gives none; "
            f"run with --configfile config/{name}.yaml or set it to a mirror",
        )
    return urls, checksums


def adhd_sources(
    config: Mapping[str, Any], basedir: str | Path, *, source: str, required: bool
) -> AdhdSources:
    """The canonical hosts of ``config/adhd.yaml``, overridden by config ``adhd``.

    A null URL keeps the canonical one. Read for every dataset (the download
    rules are always defined), required (an error when unset) by dataset adhd.
    """
    urls, checksums = _canonical_sources(
        "adhd", config, basedir, source=source, required=required
    )
    return AdhdSources(urls["base_url"], urls["atlas_url"], MappingProxyType(checksums))


@dataclass(frozen=True)
class RunInputs:
    """What the rules need to know about a run's inputs (one subclass per kind).

    Attributes
    ----------
    config : Mapping
        The checked config (schema defaults filled in).
    source : str
        Names the config in error messages.
    paths : Paths
        File names; ``{atlas}`` is a wildcard in every per-atlas one.
    atlases : tuple of AtlasSpec
        The run's atlases, in config order (names unique).
    adhd : AdhdSources
    subjects : tuple of str
        Subjects of the per-subject rules, sorted (none for dataset fmriprep,
        whose unit of work is the run).
    group_units : tuple of str
        Elements of the group stage, in the group ``.npz``'s order.
    excluded : Mapping
        Scans left out of the group stage before any job runs -> why.
    plot_unit : str
        The group element plotted and fitted by the graph lasso.
    """

    kind: ClassVar[str]

    config: Mapping[str, Any]
    source: str
    paths: Paths
    atlases: tuple[AtlasSpec, ...]
    adhd: AdhdSources
    subjects: tuple[str, ...]
    group_units: tuple[str, ...]
    excluded: Mapping[str, str]
    plot_unit: str

    # ----------------------------------------------------------- construction
    @classmethod
    def build(
        cls,
        config: Mapping[str, Any],
        *,
        source: str,
        basedir: str | Path,
        validate_sheet: SheetValidator | None = None,
    ) -> RunInputs:
        """The inputs of this kind of dataset described by ``config``."""
        raise NotImplementedError

    @classmethod
    def _every_subject(
        cls,
        common: dict[str, Any],
        paths: Paths,
        atlases: tuple[AtlasSpec, ...],
        subjects: tuple[str, ...],
    ) -> RunInputs:
        """Inputs whose every subject enters the group stage (files we make)."""
        inputs = cls(
            **common,
            paths=paths,
            atlases=atlases,
            subjects=subjects,
            group_units=subjects,
            excluded=MappingProxyType({}),
            plot_unit="",
        )
        return _with_plot_unit(inputs)

    @staticmethod
    def _common(
        config: Mapping[str, Any], source: str, basedir: str | Path, kind: str
    ) -> dict[str, Any]:
        adhd = adhd_sources(config, basedir, source=source, required=kind == "adhd")
        strategy = config["denoise_strategy"]
        if kind != "fmriprep" and strategy not in (None, "highvariance"):
            raise InputError(
                source,
                f"denoise_strategy {strategy!r} needs fMRIPrep confounds (dataset "
                f"'fmriprep'); dataset {kind!r} takes highvariance only",
            )
        return {
            "config": MappingProxyType(dict(config)),
            "source": source,
            "adhd": adhd,
        }

    # ------------------------------------------------------------ the MSDL atlas
    @property
    def msdl_url(self) -> str | None:
        """URL of the MSDL atlas zip (rule fetch_atlas)."""
        return self.adhd.atlas_url

    @property
    def msdl_checksum(self) -> str | None:
        """Known checksum of the MSDL atlas zip, or None."""
        return self.adhd.checksums.get("MSDL_rois.zip")

    # ------------------------------------------------------------------ atlases
    @property
    def atlas_names(self) -> list[str]:
        """The atlases' names, in config order (the ``{atlas}`` wildcard's values)."""
        return [atlas.name for atlas in self.atlases]

    def atlas_named(self, name: str) -> AtlasSpec:
        """The atlas called ``name``."""
        return next(atlas for atlas in self.atlases if atlas.name == name)

    @property
    def truth_atlases(self) -> list[str]:
        """Atlases whose regions are the generated ones (their truth is known).

        The synthetic dataset's own atlas and its parcellation; none for other
        datasets.
        """
        if not self.has_ground_truth:
            return []
        generated = {
            os.path.normpath(path) for path in self.paths.synthetic_atlas.values()
        }
        return [
            atlas.name
            for atlas in self.atlases
            if os.path.normpath(atlas.image) in generated
        ]

    def truth_of(self, atlas: str) -> list[str]:
        """The generated graph's file when ``atlas``'s truth is known, else []."""
        return [self.paths.synthetic_atlas["truth"]] * (atlas in self.truth_atlases)

    @property
    def atlas_files(self) -> list[str]:
        """Every atlas's image and table (inputs of the per-scan rules)."""
        return [path for atlas in self.atlases for path in atlas.files]

    @property
    def atlas_params(self) -> list[dict[str, Any]]:
        """Every atlas as a rule param, in the per-scan rules' output order."""
        return [atlas.as_param() for atlas in self.atlases]

    # -------------------------------------------------------- per-subject rules
    #: Whether the subjects come with their true precision (scored by the science
    #: check's recovery rule).
    has_ground_truth: ClassVar[bool] = False

    @property
    def denoise_strategy(self) -> str:
        """``denoise_strategy``, or its default (``highvariance``; fmriprep: simple)."""
        return self.config["denoise_strategy"] or "highvariance"

    @property
    def cleaning(self) -> CleaningSettings:
        """How every scan is cleaned (config ``high_pass``... ``min_volumes``)."""
        return CleaningSettings.from_config(self.config)

    def func(self, subject: str) -> str:
        """The subject's 4D image."""
        raise NotImplementedError(f"dataset {self.kind} has no per-subject images")

    def file_confounds(self, subject: str) -> str | None:
        """The subject's confounds file, or None."""
        return None

    def confounds(self, subject: str) -> list[str]:
        """Confounds files regressed out after the high-variance confounds (0 or 1)."""
        own = self.file_confounds(subject)
        return [] if own is None else [own]

    def sheet_t_r(self, subject: str) -> float | None:
        """The repetition time the subjects sheet gives the subject, or None."""
        return None

    def config_t_r(self, subject: str) -> float | None:
        """Config ``t_r`` for a subject the sheet gives none (else None).

        Returned only where it is used, so that changing it reruns only those jobs.
        """
        return self.config["t_r"] if self.sheet_t_r(subject) is None else None

    def synthetic_index(self, subject: str) -> int:
        """A subject's position among the run's subjects: a generated one's seed.

        Asked by rule synthetic_subject's params whenever the generated files
        are in the DAG (a sheet may point at them), whatever the dataset.
        """
        return self.subjects.index(subject)

    @property
    def other_subjects_pattern(self) -> str:
        """Regex of the subjects the graph lasso fits one by one (not the plotted)."""
        return "|".join(s for s in self.subjects if s != self.plot_unit) or "(?!)"

    # -------------------------------------------------------------- group stage
    def unit_label(self, unit: str) -> str:
        """A group element as named in figure file names."""
        return f"sub-{unit}"

    @cached_property
    def science_batches(self) -> tuple[tuple[str, ...], ...]:
        """The group elements in runs of ``model_comparison.subjects_per_job``.

        Each run is one job fitting its elements' own estimators (science check).
        """
        size = self.config["model_comparison"]["subjects_per_job"]
        units = tuple(self.group_units)
        return tuple(units[i : i + size] for i in range(0, len(units), size))

    def unit_timeseries(self, unit: str) -> list[str]:
        """Time-series TSVs of a group element (several runs when concatenated)."""
        return [fill(self.paths.subject_timeseries(), subject=unit)]

    def unit_regions(self, unit: str) -> list[str]:
        """Region tables of a group element's scans (as :meth:`unit_timeseries`)."""
        return [fill(self.paths.subject_regions, subject=unit)]

    def group_region_tables(self) -> tuple[list[str], list[str]]:
        """The region table of every scan of the group stage, and the scans' names."""
        tables = [path for unit in self.group_units for path in self.unit_regions(unit)]
        return tables, self._group_scan_names()

    def _group_scan_names(self) -> list[str]:
        return [f"sub-{unit}" for unit in self.group_units]

    def units_timeseries(self, units: Sequence[str]) -> tuple[list[str], list[int]]:
        """The time series of ``units``, flat, and how many each unit has."""
        files = [self.unit_timeseries(unit) for unit in units]
        return [f for unit_files in files for f in unit_files], [len(f) for f in files]

    def units_sidecars(self, units: Sequence[str]) -> list[str]:
        """The JSON sidecars of :meth:`units_timeseries`'s files, in the same order."""
        return [
            re.sub(r"\.tsv$", ".json", path) for path in self.units_timeseries(units)[0]
        ]

    def unit_relmat(self, unit: str, stat: str, desc: str, ext: str = "tsv") -> str:
        """Relmat TSV of a group element (xcp_d layout), or its JSON sidecar."""
        return fill(self.paths.relmat(stat, desc, ext), subject=unit)

    # -------------------------------------------------------- every scan, QC
    @property
    def scan_names(self) -> list[str]:
        """Every scan of the run, as named in the scans' QC table."""
        return [f"sub-{subject}" for subject in self.subjects]

    @property
    def scan_sidecars(self) -> list[str]:
        """Time-series sidecar of each of :attr:`scan_names`, in the same order."""
        pattern = self.paths.subject_timeseries("json")
        return [fill(pattern, subject=subject) for subject in self.subjects]

    @property
    def targets(self) -> list[str]:
        """Inputs of rule ``all`` beyond the results every dataset has."""
        return []

    # ---------------------------------------------------------- provenance
    def _source_links(self) -> dict[str, str]:
        """Dataset name -> folder of the input data (by kind)."""
        raise NotImplementedError

    @property
    def dataset_links(self) -> dict[str, str]:
        """Folders the sidecars' ``Sources`` refer to: dataset name -> folder.

        ``""`` is the results themselves (BIDS URIs ``bids::...``); then the input
        data's folder by dataset kind, and ``atlas`` for an atlas outside it.
        """
        links = {"": self.paths.results, **self._source_links()}
        data_folders = [
            os.path.abspath(folder) for name, folder in links.items() if name
        ]
        for atlas in self.atlases:
            folder = os.path.dirname(os.path.abspath(atlas.image))
            if any(
                folder == data or folder.startswith(data + os.sep)
                for data in data_folders
            ):
                continue
            key = "atlas" if len(self.atlases) == 1 else f"atlas-{atlas.name}"
            links[key] = os.path.dirname(atlas.image) or "."
        return links

    @property
    def atlas_descriptions(self) -> list[dict[str, str | None]]:
        """The atlases as ``dataset_description.json`` lists them (BIDS URIs)."""
        from sparseconn.bids import bids_uri

        links = self.dataset_links
        return [
            {
                "Name": atlas.name,
                "Image": bids_uri(atlas.image, links),
                "Labels": None
                if atlas.labels is None
                else bids_uri(atlas.labels, links),
            }
            for atlas in self.atlases
        ]

    @property
    def dataset_links_from_results(self) -> dict[str, str]:
        """:attr:`dataset_links` as written in dataset_description.json."""
        return {
            name: os.path.relpath(folder, self.paths.results).replace(os.sep, "/")
            for name, folder in self.dataset_links.items()
        }

    # ------------------------------------------------------------ plot subject
    def _plotted(self, units: Sequence[str]) -> str:
        """The subject named by ``plot_subject``, else the first group element."""
        wanted = self.config["plot_subject"]
        if wanted is None:
            return units[0]
        label = match_label(wanted, list(self.subjects), "plot_subject", self.source)
        if label is None:
            raise InputError(
                self.source,
                f"plot_subject {wanted!r} is not one of the subjects "
                f"({', '.join(self.subjects)})",
            )
        return label


def resolve_atlases(
    config: Mapping[str, Any],
    source: str,
    kind: str,
    default: AtlasSpec | None,
    generated: Sequence[str] = (),
) -> tuple[AtlasSpec, ...]:
    """The run's atlases: config ``atlases``, else the single-atlas keys.

    ``default`` is the dataset's own atlas (None: the dataset has none), used
    when nothing names another and by ``atlases`` items with neither ``image``
    nor ``templateflow``; ``generated`` lists files the workflow makes (they
    need not exist yet).

    Raises
    ------
    InputError
        Naming the config: both ways of giving atlases, two atlases of one name,
        a missing file, no atlas where the dataset has none, or a TemplateFlow
        atlas not found (naming the folder).
    """
    items = list(config.get("atlases") or [])
    single = [
        key
        for key in ("atlas_maps", "atlas_labels", "atlas_name")
        if config.get(key) is not None
    ]
    if items and single:
        raise InputError(
            source,
            f"atlases and {', '.join(single)} are both given: list every atlas "
            "under atlases",
        )
    made = {os.path.normpath(path) for path in generated}

    def check_file(key: str, path: str | None) -> None:
        if path is not None and os.path.normpath(path) not in made:
            if not os.path.isfile(path):
                raise InputError(source, f"{key} file {path!r} does not exist")

    if not items:
        maps = config.get("atlas_maps")
        if maps is None:
            if default is None:
                raise InputError(
                    source,
                    f"atlas_maps is required with dataset {kind!r} (or atlases): a "
                    "NIfTI image of probabilistic maps (4D) or region labels (3D)",
                )
            name = config.get("atlas_name") or default.name
            return (dataclasses.replace(default, name=name),)
        check_file("atlas_maps", maps)
        check_file("atlas_labels", config.get("atlas_labels"))
        spec = AtlasSpec(
            config.get("atlas_name") or "custom",
            maps,
            config.get("atlas_labels"),
            config.get("atlas_kind", "auto"),
        )
        return (spec,)

    atlases: list[AtlasSpec] = []
    for position, item in enumerate(items, 1):
        name = item["name"]
        where = f"atlases item {position} ({name})"
        if name in {atlas.name for atlas in atlases}:
            raise InputError(
                source, f"atlases: two atlases are named {name}; names must differ"
            )
        forced = item.get("kind", "auto")
        target = item.get("resampling_target")
        if "templateflow" in item:
            if "image" in item or "labels" in item:
                raise InputError(
                    source, f"{where}: give templateflow or image/labels, not both"
                )
            found = _templateflow_atlas(config, source, item["templateflow"], forced)
            spec = AtlasSpec(
                name,
                str(found.image_path),
                None if found.table_path is None else str(found.table_path),
                forced if forced != "auto" else found.kind,
                target,
            )
        elif "image" in item:
            check_file(f"{where}: image", item["image"])
            check_file(f"{where}: labels", item.get("labels"))
            spec = AtlasSpec(name, item["image"], item.get("labels"), forced, target)
        else:
            if default is None:
                raise InputError(
                    source,
                    f"{where}: give image or templateflow (dataset {kind!r} has no "
                    "atlas of its own)",
                )
            if "labels" in item:
                raise InputError(source, f"{where}: labels without image")
            spec = dataclasses.replace(
                default,
                name=name,
                kind=forced if forced != "auto" else default.kind,
                resampling_target=target,
            )
        atlases.append(spec)
    return tuple(atlases)


def _templateflow_home(config: Mapping[str, Any]) -> str:
    """Config ``templateflow_home``, else ``$TEMPLATEFLOW_HOME``, else the default."""
    return (
        config.get("templateflow_home")
        or os.environ.get("TEMPLATEFLOW_HOME")
        or os.path.join(os.path.expanduser("~"), ".cache", "templateflow")
    )


def _templateflow_atlas(
    config: Mapping[str, Any], source: str, query: Mapping[str, Any], kind: str
) -> Any:
    """The TemplateFlow atlas ``query`` names (an InputError naming the folder)."""
    from sparseconn.templateflow import find_templateflow_atlas

    return find_templateflow_atlas(
        _templateflow_home(config),
        query["template"],
        query["atlas"],
        res=query.get("res"),
        desc=query.get("desc"),
        kind=None if kind == "auto" else kind,
    )


def atlas_spaces(config: Mapping[str, Any]) -> dict[str, str | None]:
    """Each ``atlases`` item's declared template space (None: undeclared)."""
    spaces: dict[str, str | None] = {}
    for item in config.get("atlases") or []:
        declared = item.get("space")
        if declared is None and "templateflow" in item:
            declared = item["templateflow"]["template"]
        spaces[item["name"]] = declared
    return spaces


def _msdl(paths: Paths) -> AtlasSpec:
    """The MSDL atlas (downloaded): datasets adhd's and fmriprep's own."""
    files = paths.adhd_atlas
    return AtlasSpec("MSDL", files["maps"], files["labels"], "maps")


def _item(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The ``atlases`` item called ``name`` ({} when atlases is not used)."""
    return next(
        (item for item in config.get("atlases") or [] if item["name"] == name), {}
    )


def _with_plot_unit(inputs: RunInputs) -> RunInputs:
    """``inputs`` with its plotted unit (chosen from its group units)."""
    return dataclasses.replace(inputs, plot_unit=inputs._plotted(inputs.group_units))


# ------------------------------------------------------------------ synthetic


@dataclass(frozen=True)
class SyntheticInputs(RunInputs):
    """Dataset ``synthetic``: subjects and atlas generated by the workflow."""

    kind: ClassVar[str] = "synthetic"
    has_ground_truth: ClassVar[bool] = True

    @classmethod
    def build(cls, config, *, source, basedir, validate_sheet=None):
        from sparseconn.synthetic import subject_ids

        common = cls._common(config, source, basedir, cls.kind)
        paths = Paths.from_config(config)
        generated = paths.synthetic_atlas
        own = AtlasSpec("synthetic", generated["maps"], generated["labels"], "maps")
        atlases = resolve_atlases(
            config, source, cls.kind, own, generated=list(generated.values())
        )
        subjects = tuple(
            sorted(
                check_subject_id(s, source) for s in subject_ids(config["n_subjects"])
            )
        )
        return cls._every_subject(common, paths, atlases, subjects)

    def func(self, subject: str) -> str:
        return self.paths.synthetic_subject["func"].format(subject=subject)

    def file_confounds(self, subject: str) -> str | None:
        return self.paths.synthetic_subject["confounds"].format(subject=subject)

    def _source_links(self) -> dict[str, str]:
        return {"synthetic": self.paths.synthetic}


# ----------------------------------------------------------------------- adhd


@dataclass(frozen=True)
class AdhdInputs(RunInputs):
    """Dataset ``adhd``: ADHD-40 subjects and the MSDL atlas, downloaded."""

    kind: ClassVar[str] = "adhd"

    @classmethod
    def build(cls, config, *, source, basedir, validate_sheet=None):
        common = cls._common(config, source, basedir, cls.kind)
        paths = Paths.from_config(config)
        atlases = resolve_atlases(
            config, source, cls.kind, _msdl(paths), generated=_msdl(paths).files
        )
        try:
            ids = fetch.adhd_subjects(config["n_subjects"])
        except ValueError as error:
            raise InputError(source, str(error)) from None
        subjects = tuple(sorted(check_subject_id(s, source) for s in ids))
        return cls._every_subject(common, paths, atlases, subjects)

    def func(self, subject: str) -> str:
        return self.paths.adhd_subject["func"].format(subject=subject)

    def file_confounds(self, subject: str) -> str | None:
        return self.paths.adhd_subject["confounds"].format(subject=subject)

    @property
    def targets(self) -> list[str]:
        return [self.paths.adhd_phenotypes]

    def _source_links(self) -> dict[str, str]:
        return {"adhd": self.paths.adhd}


# ---------------------------------------------------------------- development


@dataclass(frozen=True)
class DevelopmentSources:
    """Where dataset development is downloaded from, and its known checksums.

    ``base_url`` stands for https://osf.io/ (nilearn's host): the participants
    table is ``<base_url>yr3av/download``, each file ``<base_url>download/<key>/``.
    """

    base_url: str
    atlas_url: str
    checksums: Mapping[str, str]

    @property
    def participants_url(self) -> str:
        return fetch.join_url(self.base_url, fetch.DEVELOPMENT_PARTICIPANTS_PATH)

    def file_url(self, key: str) -> str:
        """The URL of the OSF file ``key``."""
        return fetch.join_url(self.base_url, fetch.development_file_path(key))


@dataclass(frozen=True)
class DevelopmentInputs(RunInputs):
    """Dataset ``development``: nilearn's fetch_development_fmri, and MSDL.

    The subjects, and their order in the group stage, are those nilearn's
    fetcher picks for ``n_subjects`` (:func:`sparseconn.fetch.development_subjects`),
    read from the participants table. That table is downloaded (robustly, once,
    its SHA-256 locked) when the workflow is read, as nilearn's fetcher does
    before choosing: the jobs, ``-n`` included, then show every subject.
    """

    kind: ClassVar[str] = "development"

    sources: DevelopmentSources | None = None

    @classmethod
    def build(cls, config, *, source, basedir, validate_sheet=None):
        common = cls._common(config, source, basedir, cls.kind)
        paths = Paths.from_config(config)
        msdl = _msdl(paths)
        atlases = resolve_atlases(config, source, cls.kind, msdl, generated=msdl.files)
        urls, checksums = _canonical_sources(
            cls.kind, config, basedir, source=source, required=True
        )
        sources = DevelopmentSources(
            str(urls["base_url"]), str(urls["atlas_url"]), MappingProxyType(checksums)
        )
        participants = fetch.fetch_file(
            sources.participants_url,
            paths.development_participants,
            checksum=checksums.get(fetch.DEVELOPMENT_PARTICIPANTS_NAME),
            lock_file=paths.development_lock,
            unreachable_hint="use dataset: synthetic, or set development.base_url "
            "to a mirror",
            timeout=config["download_timeout"],
            attempts=config["download_attempts"],
        )
        try:
            ordered = fetch.development_subjects(participants, config["n_subjects"])
        except ValueError as error:
            raise InputError(source, str(error)) from None
        index = fetch.development_index()
        unknown = [subject for subject in ordered if subject not in index]
        if unknown:
            raise InputError(
                participants,
                f"participant sub-{unknown[0]} has no files on OSF (not among the "
                "155 of nilearn's index)",
            )
        ordered = [check_subject_id(subject, source) for subject in ordered]
        inputs = cls(
            **common,
            paths=paths,
            atlases=atlases,
            subjects=tuple(sorted(ordered)),
            group_units=tuple(ordered),
            excluded=MappingProxyType({}),
            plot_unit="",
            sources=sources,
        )
        return _with_plot_unit(inputs)

    @property
    def development(self) -> DevelopmentSources:
        """The sources (always set once built)."""
        assert self.sources is not None
        return self.sources

    @property
    def msdl_url(self) -> str | None:
        return self.development.atlas_url

    @property
    def msdl_checksum(self) -> str | None:
        return self.development.checksums.get("MSDL_rois.zip")

    def subject_downloads(self, subject: str) -> dict[str, Any]:
        """Rule fetch_development_subject's params: URLs and checksums by file."""
        confounds_key, bold_key = fetch.development_index()[subject]
        names = {
            "func": fetch.DEVELOPMENT_FUNC_NAME.format(subject=subject),
            "confounds": fetch.DEVELOPMENT_CONFOUNDS_NAME.format(subject=subject),
        }
        return {
            "urls": {
                "func": self.development.file_url(bold_key),
                "confounds": self.development.file_url(confounds_key),
            },
            "checksums": {
                key: self.development.checksums.get(name) for key, name in names.items()
            },
        }

    def func(self, subject: str) -> str:
        return self.paths.development_subject["func"].format(subject=subject)

    def file_confounds(self, subject: str) -> str | None:
        return self.paths.development_subject["reduced_confounds"].format(
            subject=subject
        )

    def _source_links(self) -> dict[str, str]:
        return {"development": self.paths.development_data}


# ---------------------------------------------------------------------- sheet


def _local_path(
    location: str | None,
    sheet: str,
    subject: str,
    column: str,
    paths: Paths,
    urls: dict[tuple[str, str], str],
) -> str | None:
    """A sheet location as a local path.

    ``file://`` URLs are converted to paths; an ``http(s)://`` URL becomes the path
    rule fetch_sheet_file downloads it to (``{resources_dir}/sheet/<subject>/
    <column>/<file name>``), recorded in ``urls``.
    """
    if location is None:
        return None
    where = f"subject {subject!r}: "
    parsed = urlparse(location)
    if parsed.scheme.lower() in ("http", "https"):
        name = posixpath.basename(unquote(parsed.path))
        name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
        if column == "func" and not name.endswith((".nii", ".nii.gz")):
            raise InputError(
                sheet,
                f"{where}func URL {location!r} does not name a .nii or .nii.gz "
                "file; download it and give its path",
            )
        urls[subject, column] = location
        return f"{paths.sheet_downloads}/{subject}/{column}/{name or 'confounds.tsv'}"
    if parsed.scheme.lower() == "file":
        path = url2pathname(parsed.path)
        if not os.path.isfile(path):
            raise InputError(sheet, f"{where}file {location!r} does not exist")
        return path
    return location


@dataclass(frozen=True)
class SheetInputs(RunInputs):
    """Dataset ``sheet``: the user's subjects, one row each of ``subjects_sheet``."""

    kind: ClassVar[str] = "sheet"

    rows: Mapping[str, Subject] = field(default_factory=dict)
    #: (subject, column) -> URL of the cells rule fetch_sheet_file downloads.
    urls: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def build(cls, config, *, source, basedir, validate_sheet=None):
        import pandas as pd

        from sparseconn.subjects import read_subjects_sheet

        common = cls._common(config, source, basedir, cls.kind)
        paths = Paths.from_config(config)
        atlases = resolve_atlases(config, source, cls.kind, None)
        sheet = config["subjects_sheet"]
        rows = read_subjects_sheet(sheet)
        if validate_sheet is not None:
            frame = pd.DataFrame([dataclasses.asdict(row) for row in rows])
            validate_sheet(frame, sheet, [row.subject for row in rows])
        urls: dict[tuple[str, str], str] = {}
        local = {
            row.subject: dataclasses.replace(
                row,
                func=_local_path(row.func, sheet, row.subject, "func", paths, urls),
                confounds=_local_path(
                    row.confounds, sheet, row.subject, "confounds", paths, urls
                ),
            )
            for row in rows
        }
        excluded = sorted(s for s, row in local.items() if row.exclude)
        if len(excluded) == len(local):
            raise InputError(
                sheet, "every subject is excluded; nothing is left for the group stage"
            )
        subjects = tuple(sorted(local))
        inputs = cls(
            **common,
            paths=paths,
            atlases=atlases,
            subjects=subjects,
            group_units=tuple(s for s in subjects if s not in excluded),
            excluded=MappingProxyType(
                {f"sub-{s}": "excluded in the subjects sheet" for s in excluded}
            ),
            plot_unit="",
            rows=MappingProxyType(local),
            urls=MappingProxyType(urls),
        )
        return _with_plot_unit(inputs)

    def func(self, subject: str) -> str:
        return self.rows[subject].func

    def file_confounds(self, subject: str) -> str | None:
        return self.rows[subject].confounds

    def sheet_t_r(self, subject: str) -> float | None:
        row = self.rows.get(subject)
        return None if row is None else row.t_r

    def _source_links(self) -> dict[str, str]:
        files = [
            f for row in self.rows.values() for f in (row.func, row.confounds) if f
        ]
        return {"sources": os.path.commonpath([os.path.abspath(f) for f in files])}


# ------------------------------------------------------------------- fmriprep


@dataclass(frozen=True)
class FmriprepInputs(RunInputs):
    """Dataset ``fmriprep``: the runs ("scans") of an fMRIPrep derivatives folder.

    The group stage's elements ("units") are a subject's (and session's) runs
    concatenated (``concatenate_runs``), or each run alone. Censoring and the
    strategy's columns are read from the confounds files here, so the runs left
    out of the group stage are known before any job runs.
    """

    kind: ClassVar[str] = "fmriprep"

    #: scan name -> Scan, in the order found (sorted).
    scans: Mapping[str, Any] = field(default_factory=dict)
    #: unit -> its kept scans, in order; unit -> participant label.
    unit_scans: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unit_participant: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, config, *, source, basedir, validate_sheet=None):
        from sparseconn import fmriprep
        from sparseconn.configuration import check_atlas_space
        from sparseconn.io import read_func_info

        common = cls._common(config, source, basedir, cls.kind)
        paths = Paths.from_config(config)
        msdl = _msdl(paths)
        atlases = resolve_atlases(config, source, cls.kind, msdl, generated=msdl.files)
        if not config["fmriprep_dir"]:
            raise InputError(source, "fmriprep_dir is required with dataset 'fmriprep'")
        declared = atlas_spaces(config)
        for atlas in atlases:
            own = atlas.image != msdl.image
            space = declared.get(atlas.name) or config["atlas_space"]
            if own and "templateflow" in _item(config, atlas.name):
                from sparseconn.templateflow import template_matches_space

                if not template_matches_space(space, config["space"]):
                    raise InputError(
                        source,
                        f"atlas {atlas.name} is in template {space} "
                        f"({atlas.image}) but the runs are in space "
                        f"{config['space']}: choose the atlas of that template",
                    )
                continue
            check_atlas_space(config["space"], space, own_atlas=own, source=source)
        found = fmriprep.find_scans(
            config["fmriprep_dir"],
            participant_label=config["participant_label"] or None,
            task=config["task"],
            space=config["space"],
            session=config["session"],
            run=config["run"],
            res=config["res"],
        )
        strategy = config["denoise_strategy"] or "simple"
        if strategy not in fmriprep.STRATEGIES:
            raise InputError(
                source,
                f"denoise_strategy {strategy!r} is not one of "
                f"{', '.join(fmriprep.STRATEGIES)}",
            )
        if config["graph_lasso"]["per_subject"]:
            raise InputError(
                source,
                "graph_lasso.per_subject is not available with dataset 'fmriprep'",
            )
        cleaning = CleaningSettings.from_config(config)
        excluded: dict[str, str] = {}
        by_subject: dict[str, list[Any]] = {}
        for scan in found:
            info = read_func_info(scan.bold)
            denoising = fmriprep.denoise(
                scan.confounds,
                strategy,
                info.n_volumes,
                confound_columns=(
                    config["confound_columns"] if strategy == "highvariance" else ()
                ),
            )
            n_regressors = denoising.confounds.shape[1]
            if strategy == "highvariance":
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
                cleaning,
            )
            if reason is not None:
                excluded[scan.name] = reason
            by_subject.setdefault(scan.subject, []).append(scan)
        unit_scans: dict[str, list[str]] = {}
        unit_participant: dict[str, str] = {}
        for subject, subject_scans in by_subject.items():
            if all(scan.name in excluded for scan in subject_scans):
                first = subject_scans[0]
                raise InputError(
                    first.confounds,
                    f"every run of sub-{subject} is left out of the group stage "
                    f"({excluded[first.name]}); leave the participant out "
                    "(participant_label), or censor or regress less",
                )
            for scan in subject_scans:
                if scan.name in excluded:
                    continue
                unit = scan.name
                if config["concatenate_runs"]:
                    unit = "_".join(f"{k}-{v}" for k, v in scan.entities if k != "run")
                unit_scans.setdefault(unit, []).append(scan.name)
                unit_participant[unit] = subject
        inputs = cls(
            **common,
            paths=paths,
            atlases=atlases,
            subjects=(),
            group_units=tuple(sorted(unit_scans)),
            excluded=MappingProxyType(excluded),
            plot_unit="",
            scans=MappingProxyType({scan.name: scan for scan in found}),
            unit_scans=MappingProxyType(
                {unit: tuple(names) for unit, names in unit_scans.items()}
            ),
            unit_participant=MappingProxyType(unit_participant),
        )
        return _with_plot_unit(inputs)

    @property
    def denoise_strategy(self) -> str:
        return self.config["denoise_strategy"] or "simple"

    def _plotted(self, units: Sequence[str]) -> str:
        """The first group element of ``plot_subject``'s participant, else the first."""
        wanted = self.config["plot_subject"]
        if wanted is None:
            return units[0]
        participants = sorted(set(self.unit_participant.values()))
        label = match_label(wanted, participants, "plot_subject", self.source)
        matches = [u for u in units if self.unit_participant[u] == label]
        if not matches:
            raise InputError(
                self.source,
                f"plot_subject {wanted!r} is not a participant of the group stage "
                f"({', '.join(participants)})",
            )
        return matches[0]

    @cached_property
    def scan_of_stem(self) -> dict[str, str]:
        """Time-series stem (rule fmriprep_timeseries's wildcard) -> scan name."""
        return {self.paths.timeseries_stem(name): name for name in self.scans}

    def scan(self, stem: str) -> Any:
        """The Scan whose time series has the file name stem ``stem``."""
        return self.scans[self.scan_of_stem[stem]]

    def confounds_input(self, stem: str) -> dict[str, str]:
        """The run's confounds TSV, and its JSON (compcor reads its components)."""
        scan = self.scan(stem)
        files = {"confounds": str(scan.confounds)}
        if self.denoise_strategy == "compcor":
            files["confounds_json"] = str(scan.confounds_json)
        return files

    def unit_label(self, unit: str) -> str:
        return unit

    def unit_timeseries(self, unit: str) -> list[str]:
        return [self.paths.scan_timeseries(name) for name in self.unit_scans[unit]]

    def unit_regions(self, unit: str) -> list[str]:
        return [self.paths.scan_regions(name) for name in self.unit_scans[unit]]

    def _group_scan_names(self) -> list[str]:
        return [name for unit in self.group_units for name in self.unit_scans[unit]]

    def unit_relmat(self, unit: str, stat: str, desc: str, ext: str = "tsv") -> str:
        return self.paths.scan_file(
            unit, f"relmat.{ext}", atlas=self.paths.atlas, stat=stat, desc=desc
        )

    @property
    def scan_names(self) -> list[str]:
        return list(self.scans)

    @property
    def scan_sidecars(self) -> list[str]:
        return [self.paths.scan_timeseries(name, "json") for name in self.scans]

    @property
    def targets(self) -> list[str]:
        """Every run's time series, those left out of the group stage too."""
        return [
            path
            for name in self.scans
            for path in (
                self.paths.scan_timeseries(name),
                self.paths.scan_timeseries(name, "json"),
                self.paths.scan_regions(name),
            )
        ]

    def _source_links(self) -> dict[str, str]:
        return {"preprocessed": os.path.normpath(self.config["fmriprep_dir"])}


#: Dataset kinds (config ``dataset``) and their inputs.
KINDS: dict[str, type[RunInputs]] = {
    cls.kind: cls
    for cls in (
        SyntheticInputs,
        AdhdInputs,
        DevelopmentInputs,
        SheetInputs,
        FmriprepInputs,
    )
}


def build_inputs(
    config: Mapping[str, Any],
    *,
    source: str,
    basedir: str | Path,
    validate_sheet: SheetValidator | None = None,
) -> RunInputs:
    """The run's inputs from the checked ``config`` (schema defaults filled in).

    Parameters
    ----------
    config : Mapping
        The workflow's config.
    source : str
        Names the config in errors (the config files, ``--config``).
    basedir : path-like
        The workflow's folder (``config/adhd.yaml`` is read from it).
    validate_sheet : callable, optional
        ``validate_sheet(rows, sheet_path, subjects)`` checks the subjects sheet's
        rows against its schema (the workflow passes Snakemake's ``validate``).

    Raises
    ------
    InputError
        One line naming the file or config key at fault.
    """
    inputs = KINDS[config["dataset"]].build(
        config, source=source, basedir=basedir, validate_sheet=validate_sheet
    )
    if config.get("stability", {}).get("enabled"):
        from sparseconn.configuration import check_stability

        check_stability(
            config["stability"],
            len(inputs.group_units),
            source,
            n_volumes=(
                config["synthetic"]["n_volumes"] if inputs.kind == "synthetic" else None
            ),
            heldout_folds=(
                config["model_comparison"]["n_blocks"]
                if config["science_check"]
                else None
            ),
        )
    return inputs
