from sparseconn.workflow.adapters import graph_lasso
from sparseconn.workflow.jobs import run_script

run_script(graph_lasso, snakemake)
