from sparseconn.workflow.adapters import heldout_group_sparse
from sparseconn.workflow.jobs import run_script

run_script(heldout_group_sparse, snakemake)
