from sparseconn.workflow.adapters import group_sparse_covariance
from sparseconn.workflow.jobs import run_script

run_script(group_sparse_covariance, snakemake)
