from sparseconn.workflow.adapters import plot_group_figures
from sparseconn.workflow.jobs import run_script

run_script(plot_group_figures, snakemake)
