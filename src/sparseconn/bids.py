"""BIDS names and references: entity order, and BIDS URIs of source files.

The entity order is the BIDS schema's (``src/schema/rules/entities.yaml`` of
bids-specification, 2025): ``... space, split, recording, chunk, atlas, seg,
scale, res, den, label, prov, desc``. Entities the schema does not know (the
BEP017 ``stat``) go just before ``desc``, which always comes last.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Short names of the BIDS entities, in the order the schema puts them in file names.
ENTITY_ORDER = (
    "sub",
    "tpl",
    "ses",
    "cohort",
    "sample",
    "task",
    "tracksys",
    "acq",
    "nuc",
    "voi",
    "ce",
    "trc",
    "stain",
    "rec",
    "dir",
    "run",
    "mod",
    "echo",
    "flip",
    "inv",
    "mt",
    "part",
    "proc",
    "hemi",
    "space",
    "split",
    "recording",
    "chunk",
    "atlas",
    "seg",
    "scale",
    "res",
    "den",
    "label",
    "prov",
    "desc",
)
_RANK = {key: index for index, key in enumerate(ENTITY_ORDER)}


def parse_stem(stem: str) -> list[tuple[str, str]]:
    """``sub-01_task-rest`` -> ``[("sub", "01"), ("task", "rest")]``."""
    return [tuple(part.split("-", 1)) for part in stem.split("_")]  # type: ignore[misc]


def output_name(stem: str, suffix: str, **entities: str) -> str:
    """A derivative's file name: ``stem``'s entities plus ``entities``, in BIDS order.

    Parameters
    ----------
    stem : str
        Entities of the source, ``key-value`` joined by ``_`` (e.g. a scan name).
    suffix : str
        Suffix and extension, e.g. ``"timeseries.tsv"``; empty for a stem.
    **entities : str
        Entities added (``atlas``, ``stat``, ``desc``...); they replace the
        stem's entities of the same key.

    Returns
    -------
    str
        E.g. ``output_name("sub-01_space-X_res-2", "timeseries.tsv", atlas="A")``
        is ``"sub-01_space-X_atlas-A_res-2_timeseries.tsv"``.
    """
    merged = dict(parse_stem(stem))
    merged.update(entities)
    unknown = _RANK["desc"] - 0.5
    ordered = sorted(
        enumerate(merged.items()),
        key=lambda item: (_RANK.get(item[1][0], unknown), item[0]),
    )
    parts = [f"{key}-{value}" for _, (key, value) in ordered]
    return "_".join(parts + ([suffix] if suffix else []))


def bids_uri(path: str | os.PathLike, links: Mapping[str, str]) -> str:
    """``path`` as a BIDS URI (``bids:<name>:<relative path>``) of a linked dataset.

    ``links`` maps a dataset name to its root folder (as written in
    ``DatasetLinks``); the deepest root holding ``path`` names it. A path under
    no root is returned as given.
    """
    target = os.path.abspath(path)
    best = None
    for name, root in links.items():
        absolute = os.path.abspath(root)
        if target == absolute or target.startswith(absolute.rstrip(os.sep) + os.sep):
            if best is None or len(absolute) > len(best[1]):
                best = (name, absolute)
    if best is None:
        return str(path)
    relative = os.path.relpath(target, best[1]).replace(os.sep, "/")
    return f"bids:{best[0]}:{relative}"
