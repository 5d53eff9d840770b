"""Rule ``fetch_atlas``: download the MSDL atlas zip and extract maps and labels.

Inputs
    none (the URL is ``adhd.atlas_url``)
Outputs
    maps : ``msdl_rois.nii``, 39 probabilistic maps (4D)
    labels : ``msdl_rois_labels.csv`` (x, y, z, name, net name)
Params
    url, checksum (or None), archive (download path, deleted once extracted),
    lock (checksum lock file), maps_member, labels_member
Config
    download_timeout, download_attempts (read here rather than as params, so that
    changing them does not rerun a finished download)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.fetch import fetch_archive_members

run_task(
    fetch_archive_members,
    snakemake.params.url,
    snakemake.params.archive,
    {
        snakemake.params.maps_member: snakemake.output.maps,
        snakemake.params.labels_member: snakemake.output.labels,
    },
    checksum=snakemake.params.checksum,
    lock_file=snakemake.params.lock,
    timeout=snakemake.config["download_timeout"],
    attempts=snakemake.config["download_attempts"],
    log=snakemake.log[0],
)
