# sparseconn: resting-state fMRI of many subjects to group-sparse functional
# connectomes (nilearn's example "computation of covariance matrix between brain
# regions", ADHD + MSDL). Rules wire (here and workflow/rules/*.smk); each rule
# calls its adapter in src/sparseconn/workflow/adapters.py (from a run: block, in a
# thread of this process or a child forked from it, or, for the downloads, from a
# three-line scripts/<rule>.py shim, in a process of its own); src/sparseconn
# computes.
#
#   snakemake --cores all                        # the default: a synthetic dataset
#   snakemake --cores all --config dataset=sheet atlas_maps=...   # your own data

import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# The package is imported from this checkout (installed or not). Snakemake
# appends this sys.path to the one of a script: job (scripts/<rule>.py shims): an
# installed sparseconn comes first there, so install it editable (pip install -e .)
# or not at all.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from sparseconn.workflow.errors import exit_on_input_error, schema_error
from sparseconn.configuration import check_config, read_typed_values
from sparseconn.subjects import check_config_keys
from threadpoolctl import threadpool_limits

# Jobs with a run: block run in threads of this process (locally): BLAS on one
# thread for all of them, so that what a job writes never depends on which other
# jobs run beside it (multi-threaded BLAS sums in another order).
threadpool_limits(limits=1)


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# Named in config errors: the config files read (once each), and --config if given.
CONFIG_SOURCE = ", ".join(
    {Path(path).resolve(): str(path) for path in workflow.configfiles}.values()
)
if workflow.config_settings.config:
    CONFIG_SOURCE = f"{CONFIG_SOURCE}, --config" if CONFIG_SOURCE else "--config"
CONFIG_SCHEMA = "workflow/schemas/config.schema.yaml"

with exit_on_input_error():
    config_schema = yaml.safe_load(Path(workflow.basedir, CONFIG_SCHEMA).read_text())
    check_config_keys(config, config_schema, source=CONFIG_SOURCE)
    # --config values arrive as text or numbers (false as "false", 01 as 1).
    read_typed_values(config, config_schema)
    try:
        validate(config, CONFIG_SCHEMA)
    except WorkflowError as error:
        raise schema_error(CONFIG_SOURCE, error) from None
    check_config(config, CONFIG_SOURCE)


include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/subject.smk"
include: "workflow/rules/fmriprep.smk"
include: "workflow/rules/group.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/evaluation.smk"


rule all:
    default_target: True
    input:
        PATHS.dataset_description,
        PATHS.bidsignore,
        expand(
            PATHS.high_variance_confounds,
            subject=SUBJECTS,
        ),
        expand(
            PATHS.subject_timeseries("{ext}"),
            subject=SUBJECTS,
            ext=["tsv", "json"],
            atlas=ATLASES,
        ),
        expand(PATHS.subject_regions, subject=SUBJECTS, atlas=ATLASES),
        expand(rules.group_sparse_covariance.output, atlas=ATLASES),
        expand(rules.graph_lasso.output, atlas=ATLASES),
        expand(
            PATHS.relmat("{stat}", "graphlasso"),
            subject=SUBJECTS if config["graph_lasso"]["per_subject"] else [],
            stat=["covariance", "precision"],
            atlas=ATLASES,
        ),
        expand(INPUTS.targets, atlas=ATLASES),
        expand(rules.scan_qc.output, atlas=ATLASES),
        rules.participants.output,
        rules.methods.output,
        expand(rules.group_regions.output, atlas=ATLASES),
        FIGURE_FILES,
        (
            expand(rules.model_comparison.output, atlas=ATLASES)
            if config["science_check"]
            else []
        ),
        (
            expand(rules.recovery_scores.output, atlas=INPUTS.truth_atlases)
            if config["science_check"]
            else []
        ),


rule dataset_description:
    output:
        json=PATHS.dataset_description,
        bidsignore=PATHS.bidsignore,
    log:
        f"{LOGS}/dataset_description/dataset_description.log",
    benchmark:
        f"{BENCHMARKS}/dataset_description/dataset_description.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    params:
        name="sparseconn functional connectomes",
        version=PKG_VERSION,
        links=INPUTS.dataset_links_from_results,
        atlases=INPUTS.atlas_descriptions,
        code=rule_code("dataset_description"),
    message:
        "Describing the results as a BIDS-derivatives dataset"
    run:
        adapters.dataset_description(input, output, params, wildcards, log)
