from sparseconn.workflow.adapters import heldout_subjects
from sparseconn.workflow.jobs import run_script

run_script(heldout_subjects, snakemake)
