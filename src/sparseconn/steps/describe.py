"""Steps that describe the run: ``dataset_description.json`` and the scans' QC table.

One function per rule, paths in, files out; outputs are written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sparseconn.io import (
    PathLike,
    atomic_output,
    write_json,
    write_tsv,
)

logger = logging.getLogger(__name__)


#: Columns of the per-scan quality table, in order.
SCAN_QC_COLUMNS = [
    "scan",
    "included",
    "reason",
    "volumes",
    "volumes_kept",
    "degrees_of_freedom",
    "confounds_dropped",
    "regions_outside_fov",
    "warnings",
]


def run_scan_qc(
    sidecars: Sequence[PathLike],
    scans: Sequence[str],
    excluded: dict[str, str],
    out_tsv: PathLike,
) -> None:
    """One row per scan: in the group stage or not (why), and its caveats.

    ``sidecars`` are the scans' time-series JSON files, in ``scans`` order;
    ``excluded`` gives the reasons decided before the jobs ran (the subjects
    sheet's ``exclude`` column); a sidecar's ``ExcludedFromGroup`` is the other
    source. ``warnings`` joins the sidecar's ``Warnings`` with `` | ``.
    """
    import json

    rows = []
    for scan, path in zip(scans, sidecars, strict=True):
        sidecar = json.loads(Path(path).read_text())
        reason = excluded.get(scan) or sidecar.get("ExcludedFromGroup")
        dof = sidecar.get("DegreesOfFreedom") or {}
        rows.append(
            {
                "scan": scan,
                "included": reason is None,
                "reason": reason or "",
                "volumes": sidecar["NumberOfVolumes"],
                "volumes_kept": sidecar.get(
                    "NumberOfVolumesKept", sidecar["NumberOfVolumes"]
                ),
                "degrees_of_freedom": dof.get("Remaining", ""),
                "confounds_dropped": len(sidecar.get("ConfoundsDropped", [])),
                "regions_outside_fov": len(
                    sidecar.get("RegionsOutsideFieldOfView", [])
                ),
                "warnings": " | ".join(sidecar.get("Warnings", [])),
            }
        )
    frame = pd.DataFrame(rows, columns=SCAN_QC_COLUMNS)
    write_tsv(frame.sort_values("scan", kind="stable"), out_tsv)


#: BIDS version the results follow (entity order of its schema, BIDS URIs).
BIDS_VERSION = "1.10.0"


#: Folders of the results that are not BIDS files (listed in ``.bidsignore``).
NOT_BIDS = ("figures/", "group/", "logs/", "benchmarks/", "report.html")


def run_dataset_description(
    out_json: PathLike,
    out_bidsignore: PathLike,
    *,
    name: str,
    version: str,
    links: dict[str, str],
    atlases: Sequence[dict] = (),
) -> None:
    """Describe the results as a BIDS derivative; ``.bidsignore`` its other files.

    ``links`` (dataset name -> folder, relative to the results or absolute) is
    written as ``DatasetLinks``, which the sidecars' ``bids:<name>:`` URIs refer
    to; ``atlases`` (``Name``, ``Image``, ``Labels``: their BIDS URIs) as
    ``Atlases``. No dates, so reruns give the same bytes.
    """
    description = {
        "Name": name,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "sparseconn", "Version": version}],
        "DatasetLinks": dict(sorted(links.items())),
    }
    if atlases:
        description["Atlases"] = [dict(atlas) for atlas in atlases]
    write_json(description, out_json)
    with atomic_output(out_bidsignore) as tmp:
        tmp.write_text("".join(f"{entry}\n" for entry in NOT_BIDS))
