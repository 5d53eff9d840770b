from sparseconn.workflow.adapters import fetch_phenotypes
from sparseconn.workflow.jobs import run_script

run_script(fetch_phenotypes, snakemake)
