"""Rule ``fetch_sheet_file``: download a subjects-sheet cell given as an http(s) URL.

Inputs
    none (the URL is the sheet's ``func`` or ``confounds`` cell)
Outputs
    the file, ``{resources_dir}/sheet/<subject>/<column>/<file name>``
Params
    url, lock (checksum lock file: the SHA-256 of each URL, recorded at its first
    download and verified afterwards)
Wildcards
    subject, column (func or confounds), filename
Config
    download_timeout, download_attempts (read here rather than as params, so that
    changing them does not rerun a finished download)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.fetch import fetch_file

run_task(
    fetch_file,
    snakemake.params.url,
    snakemake.output[0],
    lock_file=snakemake.params.lock,
    lock_key=snakemake.params.url,
    timeout=snakemake.config["download_timeout"],
    attempts=snakemake.config["download_attempts"],
    log=snakemake.log[0],
)
