"""The workflow layer: the only code that knows Snakemake's conventions.

It never imports Snakemake: the rules (``Snakefile``, ``workflow/rules/*.smk``)
import it. :mod:`~sparseconn.workflow.adapters` holds one function per rule,
:mod:`~sparseconn.workflow.jobs` the job runner, :mod:`~sparseconn.workflow.errors`
the one-line error contract and :mod:`~sparseconn.workflow.provenance` the rerun
hash of each rule's code.
"""
