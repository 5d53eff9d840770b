from sparseconn.workflow.adapters import fetch_development_subject
from sparseconn.workflow.jobs import run_script

run_script(fetch_development_subject, snakemake)
