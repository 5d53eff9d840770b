"""Atlases by name from a local TemplateFlow folder (``$TEMPLATEFLOW_HOME``).

TemplateFlow keeps one folder per template, ``tpl-<template>/``, holding atlas
images named ``tpl-<template>[_res-<r>]_atlas-<name>[_desc-<d>]_<suffix>.nii.gz``
where the suffix says the kind: ``dseg`` a parcellation of integer labels
(:mod:`sparseconn.labels`), ``probseg`` probabilistic maps, one volume per region
(:mod:`sparseconn.atlas`). The regions' table is a ``.tsv`` named like the image
with fewer entities: TemplateFlow shares one table across resolutions
(``tpl-X_atlas-Schaefer2018_desc-400Parcels17Networks_dseg.tsv``) and sometimes
across descriptions (``tpl-MNI152NLin6Asym_atlas-HOSPA_dseg.tsv``); a probseg
atlas's table ends in ``_probseg.tsv`` or ``_dseg.tsv``.

Only file names are read here (pathlib; no network, no ``templateflow`` package):
the images and tables are loaded by :func:`sparseconn.labels.load_label_atlas` and
:func:`sparseconn.atlas.load_atlas`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sparseconn.errors import InputError
from sparseconn.io import PathLike

AtlasKind = Literal["labels", "maps"]

#: Atlas kind of each TemplateFlow suffix.
KIND_OF_SUFFIX: dict[str, AtlasKind] = {"dseg": "labels", "probseg": "maps"}
_SUFFIX_OF_KIND = {kind: suffix for suffix, kind in KIND_OF_SUFFIX.items()}
#: Entities the caller can choose with (others only appear in messages).
_SELECTABLE = ("res", "desc")

_NAME = re.compile(
    r"^(?P<entities>tpl-[A-Za-z0-9]+(?:_[a-z]+-[A-Za-z0-9]+)*)"
    r"_(?P<suffix>dseg|probseg)(?P<extension>\.nii\.gz|\.nii|\.tsv)$"
)


@dataclass(frozen=True)
class TemplateFlowAtlas:
    """An atlas found in a TemplateFlow folder.

    Attributes
    ----------
    image_path : Path
        The ``_dseg`` or ``_probseg`` NIfTI image.
    table_path : Path or None
        Its regions' ``.tsv``, None when the folder has none.
    kind : "labels" or "maps"
        ``labels`` for a ``dseg`` image, ``maps`` for a ``probseg`` one.
    entities : dict of str to str
        The image name's entities in file order (``tpl``, ``res``, ``atlas``,
        ``desc``...), values as written (``res`` is ``"02"``, not 2).
    """

    image_path: Path
    table_path: Path | None
    kind: AtlasKind
    entities: dict[str, str]

    @property
    def template(self) -> str:
        """The template (``tpl-`` entity)."""
        return self.entities["tpl"]

    @property
    def atlas(self) -> str:
        """The atlas name (``atlas-`` entity)."""
        return self.entities["atlas"]


@dataclass(frozen=True)
class _Name:
    """A parsed file name: its entities and suffix."""

    path: Path
    entities: dict[str, str]
    suffix: str


def _parse(path: Path) -> _Name | None:
    """The entities and suffix of a TemplateFlow atlas file name, or None."""
    match = _NAME.match(path.name)
    if match is None:
        return None
    entities: dict[str, str] = {}
    for pair in match["entities"].split("_"):
        key, value = pair.split("-", 1)
        if key in entities:
            return None
        entities[key] = value
    return _Name(path, entities, match["suffix"])


def _label(value: str | int | None, entity: str) -> str | None:
    """A requested entity value as text, without its optional ``<entity>-`` prefix."""
    if value is None:
        return None
    text = str(value).strip()
    return text.removeprefix(f"{entity}-")


def _same_value(entity: str, wanted: str, found: str | None) -> bool:
    """Whether a file's entity value is the one asked for (``res`` 2 is ``02``)."""
    if found is None:
        return False
    if entity == "res" and wanted.isdigit() and found.isdigit():
        return int(wanted) == int(found)
    return wanted == found


def find_templateflow_atlas(
    home: PathLike,
    template: str,
    atlas: str,
    *,
    res: str | int | None = None,
    desc: str | None = None,
    kind: AtlasKind | None = None,
) -> TemplateFlowAtlas:
    """Find one atlas image (and its table) by name in a TemplateFlow folder.

    Parameters
    ----------
    home : path-like
        The TemplateFlow home (``$TEMPLATEFLOW_HOME``), holding ``tpl-<template>/``.
    template : str
        The template, e.g. ``MNI152NLin2009cAsym``.
    atlas : str
        The ``atlas-`` entity, e.g. ``Schaefer2018``.
    res : str, int or None
        The ``res-`` entity: ``2``, ``"2"``, ``"02"`` and ``"res-02"`` all name
        ``res-02``. None: any.
    desc : str or None
        The ``desc-`` entity, e.g. ``400Parcels17Networks``. None: any.
    kind : "labels", "maps" or None
        Only ``dseg`` (labels) or ``probseg`` (maps) images; None: either. Needed
        where a folder holds both for the same entities (e.g. HOSPA).

    Returns
    -------
    TemplateFlowAtlas

    Raises
    ------
    InputError
        One line naming the folder: the home or template folder is missing; no
        image matches (listing the atlases or the chosen atlas's entities present);
        several match (naming the entity that tells them apart); the image or its
        table is an empty file (a TemplateFlow placeholder not yet downloaded).
    """
    home = Path(home)
    if not home.is_dir():
        raise InputError(home, "TemplateFlow home folder not found")
    folder = home / f"tpl-{template}"
    if not folder.is_dir():
        templates = sorted(
            path.name for path in home.glob("tpl-*") if path.is_dir()
        ) or ["none"]
        raise InputError(
            folder,
            f"template {template} not found in the TemplateFlow home; present: "
            f"{', '.join(templates)}",
        )
    if kind is not None and kind not in _SUFFIX_OF_KIND:
        raise InputError(folder, f"atlas kind {kind!r} is not 'labels' or 'maps'")
    names = [
        name
        for name in map(_parse, sorted(folder.iterdir()))
        if name is not None
        and name.entities["tpl"] == template
        and "atlas" in name.entities
        and (name.path.is_file() or name.path.is_symlink())
    ]
    images = [name for name in names if not name.path.name.endswith(".tsv")]
    tables = [name for name in names if name.path.name.endswith(".tsv")]
    wanted = {"res": _label(res, "res"), "desc": _label(desc, "desc")}
    request = " ".join(
        [f"atlas-{atlas}"]
        + [f"{entity}-{value}" for entity, value in wanted.items() if value]
        + ([_SUFFIX_OF_KIND[kind]] if kind else [])
    )
    of_atlas = [name for name in images if name.entities["atlas"] == atlas]
    matches = [
        name
        for name in of_atlas
        if all(
            value is None or _same_value(entity, value, name.entities.get(entity))
            for entity, value in wanted.items()
        )
        and (kind is None or KIND_OF_SUFFIX[name.suffix] == kind)
    ]
    if not matches:
        raise InputError(
            folder, f"no {request}; present: {_present(of_atlas or images)}"
        )
    if len(matches) > 1:
        raise InputError(folder, _ambiguity(request, matches))
    image = matches[0]
    _check_downloaded(image.path)
    table = _find_table(folder, image, tables)
    if table is not None:
        _check_downloaded(table)
    return TemplateFlowAtlas(
        image_path=image.path,
        table_path=table,
        kind=KIND_OF_SUFFIX[image.suffix],
        entities=dict(image.entities),
    )


def _present(images: list[_Name]) -> str:
    """The atlases of ``images`` and their entities' values, for a message."""
    if not images:
        return "no atlas image (tpl-*_atlas-*_dseg.nii.gz or _probseg.nii.gz)"
    by_atlas: dict[str, list[_Name]] = {}
    for image in images:
        by_atlas.setdefault(image.entities["atlas"], []).append(image)
    parts = []
    for atlas, files in sorted(by_atlas.items()):
        entities = sorted(
            {key for name in files for key in name.entities} - {"tpl", "atlas"}
        )
        described = [f"atlas-{atlas}"] + [
            f"{key}-{_braced(name.entities.get(key) for name in files)}"
            for key in entities
        ]
        described.append(_braced(name.suffix for name in files))
        parts.append(" ".join(described))
    return "; ".join(parts)


def _braced(values) -> str:
    """``a`` for one value, ``{a,b}`` for several (a missing entity is ``none``)."""
    unique = sorted({value or "none" for value in values})
    return unique[0] if len(unique) == 1 else "{" + ",".join(unique) + "}"


def _ambiguity(request: str, matches: list[_Name]) -> str:
    """Why several images match, and which entity to give to choose one."""
    keys = sorted({key for name in matches for key in name.entities})
    differing = [
        key for key in keys if len({name.entities.get(key) for name in matches}) > 1
    ]
    values = [
        f"{key}-{_braced(n.entities.get(key) for n in matches)}" for key in differing
    ]
    if len({name.suffix for name in matches}) > 1:
        values.append(_braced(name.suffix for name in matches))
    choose = [key for key in differing if key in _SELECTABLE]
    if len({name.suffix for name in matches}) > 1:
        choose.append("kind (labels or maps)")
    hint = (
        f"give {' and '.join(choose)}"
        if choose
        else "they differ in entities that cannot be chosen; keep one in the folder"
    )
    return f"{len(matches)} images match {request} ({' '.join(values)}): {hint}"


def _find_table(folder: Path, image: _Name, tables: list[_Name]) -> Path | None:
    """The image's regions table: the most specific ``.tsv`` of the same atlas.

    A table fits when each of its entities is the image's (``res`` compared as a
    number); TemplateFlow's tables leave out ``res`` and sometimes ``desc``. A
    ``_probseg.tsv`` is preferred to a ``_dseg.tsv`` for a probseg image; a dseg
    image only takes a ``_dseg.tsv``.
    """
    fitting = [
        table
        for table in tables
        if (table.suffix == image.suffix or table.suffix == "dseg")
        and all(
            _same_value(key, value, image.entities.get(key))
            for key, value in table.entities.items()
        )
    ]
    if not fitting:
        return None

    def rank(table: _Name) -> tuple[bool, int]:
        return table.suffix == image.suffix, len(table.entities)

    best = max(map(rank, fitting))
    tied = [table for table in fitting if rank(table) == best]
    if len(tied) > 1:
        raise InputError(
            folder,
            f"several tables fit {image.path.name} equally: "
            f"{', '.join(table.path.name for table in tied)}",
        )
    return tied[0].path


def _check_downloaded(path: Path) -> None:
    """Raise if ``path`` is a broken link or an empty file (not yet downloaded)."""
    if not path.exists():
        raise InputError(path, "broken link: the file is not downloaded (DataLad?)")
    if path.stat().st_size == 0:
        raise InputError(
            path,
            "empty file: a TemplateFlow placeholder not yet downloaded (fetch it, "
            "e.g. with templateflow.api.get)",
        )


def template_matches_space(template: str, space: str) -> bool:
    """Whether an atlas in TemplateFlow ``template`` may be read on data in ``space``.

    ``space`` is the fMRIPrep ``space-`` entity of the runs (config ``space``).
    They must be the same template: ``MNI152NLin2009cAsym`` and
    ``MNI152NLin2009cSym``, or ``MNI152NLin6Asym``, are different (False).

    This is stricter than :func:`sparseconn.configuration.check_atlas_space`, where
    any two MNI152 variants match: that rule is for an atlas whose exact template
    is not known (the MSDL maps, or ``atlas_maps`` declared as ``MNI152``), and for
    smooth probabilistic maps, which a few millimetres between variants barely
    change. A TemplateFlow atlas names its exact template, TemplateFlow ships most
    atlases in each MNI152 variant (so the right one can be chosen), and a
    parcellation read by nearest neighbour moves its borders by those millimetres.
    Names are compared as written (TemplateFlow names are case-sensitive).
    """
    return template.removeprefix("tpl-") == space.removeprefix("space-")
