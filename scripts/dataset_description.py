"""Rule ``dataset_description``: describe ``results_dir`` as a BIDS derivative.

Inputs
    none
Outputs
    ``dataset_description.json``: Name, BIDSVersion, DatasetType "derivative",
    GeneratedBy (sparseconn and its version); no dates, so reruns give the same
    bytes
Params
    name, version
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.io import PathLike, write_json

#: BIDS version the results follow.
BIDS_VERSION = "1.9.0"


def write_dataset_description(path: PathLike, *, name: str, version: str) -> None:
    """Write the ``dataset_description.json`` of the results, atomically."""
    write_json(
        {
            "Name": name,
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "sparseconn", "Version": version}],
        },
        path,
    )


run_task(
    write_dataset_description,
    snakemake.output[0],
    name=snakemake.params.name,
    version=snakemake.params.version,
    log=snakemake.log[0],
)
