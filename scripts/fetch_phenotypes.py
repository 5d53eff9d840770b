"""Rule ``fetch_phenotypes``: download the ADHD-40 phenotypic table.

Inputs
    none (the URL is ``adhd.base_url`` + ``7781/adhd40_metadata.tgz``)
Outputs
    csv : ``ADHD200_40subs_motion_parameters_and_phenotypics.csv``
Params
    url, checksum (or None), archive (download path, deleted once extracted),
    lock (checksum lock file), member
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
    {snakemake.params.member: snakemake.output.csv},
    checksum=snakemake.params.checksum,
    lock_file=snakemake.params.lock,
    timeout=snakemake.config["download_timeout"],
    attempts=snakemake.config["download_attempts"],
    log=snakemake.log[0],
)
