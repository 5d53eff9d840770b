# The run's inputs, built once from the checked config by the package
# (sparseconn.workflow.inputs: one class per dataset kind), and the small input
# functions the rules call; a rule's code hash is rule_code("<rule>"). The names
# here are read by every .smk file.

import dataclasses

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import sparseconn
from sparseconn import fetch
from sparseconn.workflow import adapters
from sparseconn.workflow.errors import exit_on_input_error, schema_error
from sparseconn.workflow.inputs import build_inputs
from sparseconn.workflow.paths import ESTIMATES, MATRIX_KINDS
from sparseconn.workflow.provenance import rule_code

PKG_VERSION = sparseconn.__version__


wildcard_constraints:
    subject="[A-Za-z0-9]+",


def _validate_sheet(rows, sheet, subjects):
    """The subjects sheet's rows against their schema (one error line)."""
    try:
        validate(rows, "../schemas/subjects.schema.yaml", set_default=False)
    except WorkflowError as error:
        raise schema_error(sheet, error, subjects) from None


with exit_on_input_error():
    INPUTS = build_inputs(
        config,
        source=CONFIG_SOURCE,
        basedir=workflow.basedir,
        validate_sheet=_validate_sheet,
    )

PATHS = INPUTS.paths


wildcard_constraints:
    atlas="|".join(INPUTS.atlas_names),


RESULTS, LOGS, BENCHMARKS = PATHS.results, PATHS.logs, PATHS.benchmarks
# Every per-atlas file name holds the {atlas} wildcard: per-scan rules write
# every atlas's files in one job (one read of the image), the group stage runs
# once per atlas.
ATLASES = INPUTS.atlas_names
# Subjects of the per-subject rules; elements of the group stage (the sheet's
# excluded subjects left out; dataset fmriprep: its units); the plotted one.
SUBJECTS, GROUP_SUBJECTS = list(INPUTS.subjects), list(INPUTS.group_units)
PLOT_SUBJECT = INPUTS.plot_unit
# Science check: per-subject fits in batches, numbered from 1.
SCIENCE_BATCHES = range(1, len(INPUTS.science_batches) + 1)
# How every scan is cleaned, passed whole as a param; a dict, which Snakemake
# compares on reruns (a dataclass it would ignore).
CLEANING = dataclasses.asdict(INPUTS.cleaning)


def get_func(wildcards):
    return INPUTS.func(wildcards.subject)


def get_confounds(wildcards):
    return INPUTS.confounds(wildcards.subject)


def get_atlas_files(wildcards):
    """The image and table of the job's atlas."""
    return INPUTS.atlas_named(wildcards.atlas).files


def get_atlas_param(wildcards):
    """The job's atlas, as a rule param."""
    return INPUTS.atlas_named(wildcards.atlas).as_param()


def get_sheet_t_r(wildcards):
    return INPUTS.sheet_t_r(wildcards.subject)


def get_config_t_r(wildcards):
    return INPUTS.config_t_r(wildcards.subject)


def get_batch_units(wildcards):
    return list(INPUTS.science_batches[int(wildcards.batch) - 1])


def get_batch_timeseries(wildcards):
    return INPUTS.units_timeseries(get_batch_units(wildcards))[0]


def get_batch_sizes(wildcards):
    return INPUTS.units_timeseries(get_batch_units(wildcards))[1]


def _scan_key(wildcards):
    return f"{wildcards.stem}|{wildcards.post}"


def get_scan_name(wildcards):
    return INPUTS.scan_of_stem[_scan_key(wildcards)]


def get_fmriprep_bold(wildcards):
    return str(INPUTS.scan(_scan_key(wildcards)).bold)


def get_fmriprep_confounds(wildcards):
    return INPUTS.confounds_input(_scan_key(wildcards))


def get_synthetic_index(wildcards):
    return INPUTS.synthetic_index(wildcards.subject)


def get_adhd_subject_url(wildcards):
    return INPUTS.adhd.subject_url(wildcards.subject)


def get_adhd_subject_checksum(wildcards):
    return INPUTS.adhd.checksums.get(f"adhd40_{wildcards.subject}.tgz")


def get_adhd_subject_download(wildcards):
    return PATHS.adhd_download(f"adhd40_{wildcards.subject}.tgz")


def get_adhd_subject_members(wildcards):
    return fetch.adhd_subject_members(wildcards.subject)


def get_development_urls(wildcards):
    return INPUTS.subject_downloads(wildcards.subject)["urls"]


def get_development_checksums(wildcards):
    return INPUTS.subject_downloads(wildcards.subject)["checksums"]


def get_sheet_url(wildcards):
    return INPUTS.urls[wildcards.subject, wildcards.column]
