"""The run's settings as the methods paragraph needs them (rule ``methods``'s param).

Read from the run's inputs at parse time, as builtin values (Snakemake compares
params on reruns): the paragraph is rewritten whenever a setting it names
changes. The text itself is written by :func:`sparseconn.steps.describe.run_methods`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sparseconn.configuration import changed_settings, schema_defaults


def methods_settings(inputs: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    """What the methods paragraph says about the run ``inputs`` (a ``RunInputs``).

    ``schema``: the config's JSON schema, whose defaults the run's config is
    compared with (``Changed``: every differing key, dotted, its value and its
    default).
    """
    config = inputs.config
    changed = changed_settings(config, schema_defaults(schema))
    return {
        "Dataset": config["dataset"],
        "Subjects": len(inputs.subjects) or len(inputs.scan_names),
        "GroupUnits": len(inputs.group_units),
        "Excluded": len(inputs.excluded),
        "Synthetic": dict(config["synthetic"])
        if config["dataset"] == "synthetic"
        else None,
        "Atlases": [
            {"Name": atlas.name, "Kind": atlas.kind} for atlas in inputs.atlases
        ],
        "DenoiseStrategy": inputs.denoise_strategy,
        "HighVarianceConfounds": config["n_high_variance_confounds"],
        "HighVariancePercentile": config["high_variance_percentile"],
        "ConfoundColumns": list(config["confound_columns"]),
        "Cleaning": inputs.cleaning.sidecar(),
        "MinVolumes": config["min_volumes"],
        "MinDegreesOfFreedom": config["min_degrees_of_freedom"],
        "MinRegionCoverage": config["min_region_coverage"],
        "GroupSparse": dict(config["group_sparse"]),
        "GraphLassoPerSubject": bool(config["graph_lasso"]["per_subject"]),
        "PlotUnit": inputs.plot_unit,
        "Figures": dict(config["figures"]),
        "ScienceCheck": bool(config["science_check"]),
        "Changed": [[key, value, default] for key, value, default in changed],
    }
