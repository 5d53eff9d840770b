from sparseconn.workflow.adapters import model_comparison
from sparseconn.workflow.jobs import run_script

run_script(model_comparison, snakemake)
