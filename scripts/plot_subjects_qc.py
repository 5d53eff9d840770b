from sparseconn.workflow.adapters import plot_subjects_qc
from sparseconn.workflow.jobs import run_script

run_script(plot_subjects_qc, snakemake)
