from sparseconn.workflow.adapters import fetch_atlas
from sparseconn.workflow.jobs import run_script

run_script(fetch_atlas, snakemake)
