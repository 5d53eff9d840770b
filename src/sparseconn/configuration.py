"""The workflow's config as people type it, and checks across its keys.

``snakemake --config key=value`` reads each value as an int, else a float, else
``True``/``False``, else YAML with every scalar kept as text: ``false`` and
``null`` arrive as the strings ``"false"`` and ``"null"``, ``01`` as the integer
1, ``a,b`` as one string. :func:`read_typed_values` gives such values the type
the config schema asks for, so that a key means on the command line what it
means in ``config.yaml``. Labels that were turned into numbers are matched by
:func:`sparseconn.subjects.match_label`.

The other functions check what the schema cannot: relations between keys and
the file system, before any job runs. Each raises
:class:`~sparseconn.errors.InputError` naming the config key. This module does
not import Snakemake.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from sparseconn.errors import InputError

_YAML_NULL = frozenset({"null", "Null", "NULL", "~"})
_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
#: Template of an atlas whose space is not given (MSDL and most published
#: atlases): any MNI152 variant.
DEFAULT_ATLAS_SPACE = "MNI152"


def read_typed_values(config: MutableMapping[str, Any], schema: Mapping) -> None:
    """Give text values of ``config`` the type its JSON schema asks for, in place.

    A string is left alone where the schema accepts it as it is (type string,
    matching the pattern and enum), except YAML's null (``null``, ``~``) where
    null is allowed. Otherwise: ``true``/``false``/``yes``/``no``/``on``/``off``
    (any case) and the integers 1 and 0 become booleans for a boolean key; text
    holding a number becomes that number for a numeric key; a scalar given for a
    list becomes a one-item list (text is split at commas: ``a,b`` is
    ``["a", "b"]``). Nested objects are read by their own schema. Values the
    schema does not describe, or that cannot be read, are left for the schema's
    validation to report.
    """
    properties = schema.get("properties", {})
    for key, value in list(config.items()):
        if key in properties:
            config[key] = _typed(value, properties[key])


def _types(schema: Mapping) -> list[str]:
    kind = schema.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def _accepts_text(text: str, schema: Mapping) -> bool:
    if "string" not in _types(schema):
        return False
    if "enum" in schema and text not in schema["enum"]:
        return False
    pattern = schema.get("pattern")
    return pattern is None or re.search(pattern, text) is not None


def _typed(value: Any, schema: Mapping) -> Any:
    types = _types(schema)
    if "object" in types and isinstance(value, MutableMapping):
        read_typed_values(value, schema)
        return value
    if "array" in types and not isinstance(value, list | tuple | Mapping):
        if value is None and "null" not in types:
            return []
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        elif value is not None:
            value = [value]
    if "array" in types and isinstance(value, list):
        return [_typed(item, schema.get("items", {})) for item in value]
    if "boolean" in types and type(value) is int and value in (0, 1):
        return bool(value)
    if not isinstance(value, str):
        return value
    if "null" in types and value.strip() in _YAML_NULL:
        return None
    if _accepts_text(value, schema):
        return value
    text = value.strip()
    if "boolean" in types and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    if "integer" in types and _INTEGER.fullmatch(text):
        return int(text)
    if "number" in types:
        try:
            return float(text)
        except ValueError:
            pass
    return value


def check_filter_band(
    high_pass: float | None, low_pass: float | None, source: str
) -> None:
    """Raise `InputError` unless ``low_pass`` is above ``high_pass`` (when both set)."""
    if high_pass is not None and low_pass is not None and low_pass <= high_pass:
        raise InputError(
            source,
            f"low_pass {low_pass:g} Hz must be above high_pass {high_pass:g} Hz "
            "(the Butterworth filter keeps the band between them); set "
            "low_pass: null for no low-pass filter",
        )


def check_output_folder(path: str, key: str, source: str) -> None:
    """Raise `InputError` if folder ``path`` (config ``key``) cannot be created.

    It cannot when it, or one of the folders above it, is an existing file.
    """
    current = os.path.abspath(path)
    while True:
        if os.path.exists(current):
            if not os.path.isdir(current):
                where = "is"
                if current != os.path.abspath(path):
                    where = f"is under {current!r}, which is"
                raise InputError(
                    source,
                    f"{key} {path!r} {where} an existing file, not a folder; "
                    f"set {key} to a folder",
                )
            return
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent


def check_atlas_space(
    space: str, atlas_space: str | None, *, own_atlas: bool, source: str
) -> None:
    """Raise `InputError` unless the atlas's template is the runs' space.

    Parameters
    ----------
    space : str
        The fMRIPrep output space of the runs (config ``space``).
    atlas_space : str or None
        The atlas's space as declared by config ``atlas_space``; None means
        :data:`DEFAULT_ATLAS_SPACE` (MNI152).
    own_atlas : bool
        Whether the atlas is the user's ``atlas_maps`` (else the downloaded
        MSDL atlas, which is in MNI152 space whatever ``atlas_space`` says).
    source : str
        Named in the error (the config).

    Every MNI152 variant (``MNI152NLin2009cAsym``, ``MNI152NLin6Asym``,
    ``MNI152Lin``, ...) matches every other: they differ by a few millimetres,
    less than the extent of the probabilistic maps this workflow reads. Any other
    pair must be equal: a native space (``T1w``, ``func``, ``boldref``,
    ``fsnative``) or another template (``MNI305``, ``MNIPediatricAsym``) with an
    MNI152 atlas is an error.
    """
    declared = atlas_space or DEFAULT_ATLAS_SPACE
    if not own_atlas and not declared.startswith(DEFAULT_ATLAS_SPACE):
        raise InputError(
            source,
            f"atlas_space {declared}: the MSDL atlas (downloaded when atlas_maps "
            f"is not set) is in {DEFAULT_ATLAS_SPACE} space; give atlas_maps in "
            f"space {declared}, or leave atlas_space unset",
        )
    both_mni = declared.startswith(DEFAULT_ATLAS_SPACE) and space.startswith(
        DEFAULT_ATLAS_SPACE
    )
    if declared == space or both_mni:
        return
    if not own_atlas:
        atlas = f"the MSDL atlas is in {declared} space"
    elif atlas_space:
        atlas = f"atlas_maps is in {declared} space (atlas_space)"
    else:
        atlas = f"atlas_maps is taken to be in {declared} space (atlas_space unset)"
    raise InputError(
        source,
        f"{atlas} but the runs are in space {space} (space): the maps would be "
        "read at the wrong voxels; select runs in an "
        f"{DEFAULT_ATLAS_SPACE} space (space: MNI152NLin2009cAsym), or, if "
        f"atlas_maps is in {space} space, set atlas_space: {space}",
    )


def check_config(config: Mapping[str, Any], source: str) -> None:
    """Checks across keys of a validated config, before any job runs.

    ``low_pass`` above ``high_pass``; ``results_dir`` and ``resources_dir``
    folders that can be created (see :func:`check_filter_band` and
    :func:`check_output_folder`).
    """
    check_filter_band(config.get("high_pass"), config.get("low_pass"), source)
    for key in ("results_dir", "resources_dir"):
        if config.get(key):
            check_output_folder(config[key], key, source)


def smallest_training_part(n_volumes: int, n_folds: int) -> int:
    """Volumes of a series' smallest training part when one of ``n_folds``
    contiguous blocks (``numpy.array_split``) is held out."""
    return n_volumes - -(-n_volumes // n_folds)


def check_stability(
    settings: Mapping[str, Any],
    n_units: int,
    source: str,
    *,
    n_volumes: int | None = None,
    heldout_folds: int | None = None,
) -> None:
    """Raise `InputError` naming the ``stability`` key the run cannot satisfy.

    Parameters
    ----------
    settings : Mapping
        The config's ``stability`` (schema-checked).
    n_units : int
        Elements of the group stage (subjects, or units of runs).
    source : str
        Named in the error (the config).
    n_volumes : int, optional
        Volumes of every series when known before any job runs (dataset
        synthetic); the stability job checks the others.
    heldout_folds : int, optional
        The science check's ``model_comparison.n_blocks`` when it runs: stability
        selection is also run on each training part.

    Scheme ``time`` needs 2 subjects and ``n_blocks`` blocks of at least 2
    volumes (so a half holds at least ``n_blocks`` volumes of each subject);
    scheme ``subjects`` needs 4 subjects (2 a half).
    """
    scheme = settings["scheme"]
    needed = 4 if scheme == "subjects" else 2
    if n_units < needed:
        raise InputError(
            source,
            f"stability.scheme {scheme}: stability selection of the group-sparse "
            f"model needs at least {needed} group elements, the run has {n_units}; "
            + (
                "use stability.scheme: time, or "
                if scheme == "subjects" and n_units >= 2
                else ""
            )
            + "set stability.enabled: false",
        )
    if scheme != "time" or n_volumes is None:
        return
    n_blocks = settings["n_blocks"]
    shortest, where = n_volumes, f"{n_volumes} volumes per subject"
    if heldout_folds is not None:
        shortest = smallest_training_part(n_volumes, heldout_folds)
        where = (
            f"{shortest} volumes per subject in the science check's training parts "
            f"({n_volumes} volumes, model_comparison.n_blocks {heldout_folds})"
        )
    if shortest < 2 * n_blocks:
        raise InputError(
            source,
            f"stability.n_blocks {n_blocks}: too few volumes per half: {where} "
            f"make blocks of fewer than 2 volumes (need {2 * n_blocks}); use "
            f"stability.n_blocks {max(2, shortest // 4 * 2)} or fewer",
        )


def schema_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The default config the schema describes: every key's ``default``.

    An object with ``properties`` gives the defaults of its own keys (its
    ``default``, usually ``{}``, is what validation starts from).
    """
    defaults: dict[str, Any] = {}
    for key, item in schema.get("properties", {}).items():
        if "properties" in item:
            defaults[key] = schema_defaults(item)
        elif "default" in item:
            defaults[key] = item["default"]
    return defaults


def changed_settings(
    config: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str = ""
) -> list[tuple[str, Any, Any]]:
    """Settings of ``config`` differing from ``defaults``: (dotted key, value, default).

    Nested keys are named ``group_sparse.alphas``; keys in alphabetical order.
    """
    changed = []
    for key in sorted(set(config) | set(defaults)):
        value, default = config.get(key), defaults.get(key)
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(default, Mapping) and default:
            changed.extend(changed_settings(value, default, f"{name}."))
        elif value != default:
            changed.append((name, value, default))
    return changed
