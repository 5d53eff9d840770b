from sparseconn.workflow.adapters import graph_lasso_subject
from sparseconn.workflow.jobs import run_script

run_script(graph_lasso_subject, snakemake)
