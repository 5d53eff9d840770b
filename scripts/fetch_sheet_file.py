from sparseconn.workflow.adapters import fetch_sheet_file
from sparseconn.workflow.jobs import run_script

run_script(fetch_sheet_file, snakemake)
