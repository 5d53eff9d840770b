# Figures under {results_dir}/figures/, each one a report() item for
# `snakemake --report`: the plotted subject's connectome and matrices for both
# estimates, the cross-validation curves, and one quality-control figure per
# subject. Drawn with matplotlib only (src/sparseconn/plotting.py).

FIGURE_SETTINGS = config["figures"]
# SVG copies of the group-level figures (config figures.svg); PNGs always.
FIGURE_EXTRA = ["svg"] if FIGURE_SETTINGS["svg"] else []

# File names without their extension (.png, .svg); {estimate} and {subject}
# are wildcards.
PLOTTED_LABEL = INPUTS.unit_label(PLOT_SUBJECT)
CONNECTOME_FIGURE = PATHS.plotted_figure(PLOTTED_LABEL, "desc-{estimate}_connectome")
MATRIX_FIGURE = {
    kind: PATHS.plotted_figure(PLOTTED_LABEL, f"stat-{kind}_desc-{{estimate}}_matrix")
    for kind in MATRIX_KINDS
}
CV_FIGURE = PATHS.group_figure("desc-{estimate}_cv")
QC_FIGURE = PATHS.qc_figure
# The estimate's group .npz (desc-groupsparse or desc-graphlasso).
GROUP_NPZ = PATHS.group_connectome("{estimate}")


wildcard_constraints:
    estimate="|".join(ESTIMATES),


# Every group-level figure of both estimates in one job of its own process: one
# matplotlib import, and no figure drawn beside another in a thread.
rule plot_group_figures:
    input:
        npz=expand(GROUP_NPZ, estimate=ESTIMATES),
        maps=INPUTS.atlas.maps,
        labels=get_atlas_labels,
    output:
        connectome=[
            report(
                png,
                caption="../report/connectome.rst",
                category="1. Connectomes",
                labels={"estimate": estimate, "subject": PLOT_SUBJECT},
            )
            for estimate, png in zip(
                ESTIMATES, expand(f"{CONNECTOME_FIGURE}.png", estimate=ESTIMATES)
            )
        ],
        connectome_svg=[
            file
            for ext in FIGURE_EXTRA
            for file in expand(f"{CONNECTOME_FIGURE}.{ext}", estimate=ESTIMATES)
        ],
        covariance=[
            report(
                png,
                caption="../report/matrix_covariance.rst",
                category="2. Matrices",
                subcategory=estimate,
                labels={"estimate": estimate, "matrix": "covariance"},
            )
            for estimate, png in zip(
                ESTIMATES,
                expand(f"{MATRIX_FIGURE['covariance']}.png", estimate=ESTIMATES),
            )
        ],
        covariance_svg=[
            file
            for ext in FIGURE_EXTRA
            for file in expand(
                f"{MATRIX_FIGURE['covariance']}.{ext}", estimate=ESTIMATES
            )
        ],
        sparsity=[
            report(
                png,
                caption="../report/matrix_sparsity.rst",
                category="2. Matrices",
                subcategory=estimate,
                labels={"estimate": estimate, "matrix": "sparsity"},
            )
            for estimate, png in zip(
                ESTIMATES,
                expand(f"{MATRIX_FIGURE['sparsity']}.png", estimate=ESTIMATES),
            )
        ],
        sparsity_svg=[
            file
            for ext in FIGURE_EXTRA
            for file in expand(
                f"{MATRIX_FIGURE['sparsity']}.{ext}", estimate=ESTIMATES
            )
        ],
        precision=[
            report(
                png,
                caption="../report/matrix_precision.rst",
                category="2. Matrices",
                subcategory=estimate,
                labels={"estimate": estimate, "matrix": "precision"},
            )
            for estimate, png in zip(
                ESTIMATES,
                expand(f"{MATRIX_FIGURE['precision']}.png", estimate=ESTIMATES),
            )
        ],
        precision_svg=[
            file
            for ext in FIGURE_EXTRA
            for file in expand(
                f"{MATRIX_FIGURE['precision']}.{ext}", estimate=ESTIMATES
            )
        ],
        cv=[
            report(
                png,
                caption="../report/cv_curve.rst",
                category="3. Cross-validation",
                labels={"estimate": estimate},
            )
            for estimate, png in zip(
                ESTIMATES, expand(f"{CV_FIGURE}.png", estimate=ESTIMATES)
            )
        ],
        cv_svg=[
            file
            for ext in FIGURE_EXTRA
            for file in expand(f"{CV_FIGURE}.{ext}", estimate=ESTIMATES)
        ],
    log:
        f"{LOGS}/plot_group_figures/plot_group_figures.log",
    benchmark:
        f"{BENCHMARKS}/plot_group_figures/plot_group_figures.tsv"
    threads: 1
    resources:
        mem_mb=800,
        runtime=10,
    params:
        estimates=ESTIMATES,
        subject=PLOT_SUBJECT,
        edge_threshold=FIGURE_SETTINGS["edge_threshold"],
        dpi=FIGURE_SETTINGS["dpi"],
        code=rule_code("plot_group_figures"),
    message:
        "Connectome, matrix and cross-validation figures (sub-{params.subject})"
    run:
        adapters.plot_group_figures(input, output, params, wildcards, log)


# Subjects with a quality-control figure (none when figures.subject_qc is false).
QC_SUBJECTS = SUBJECTS if FIGURE_SETTINGS["subject_qc"] else []


# Every subject's quality-control figure in one job of its own process.
rule plot_subjects_qc:
    input:
        confounds=expand(PATHS.high_variance_confounds, subject=QC_SUBJECTS),
        timeseries=expand(PATHS.subject_timeseries(), subject=QC_SUBJECTS),
        sidecar=expand(PATHS.subject_timeseries("json"), subject=QC_SUBJECTS),
    output:
        png=[
            report(
                png,
                caption="../report/subject_qc.rst",
                category="4. Subject quality control",
                labels={"subject": subject},
            )
            for subject, png in zip(
                QC_SUBJECTS, expand(f"{QC_FIGURE}.png", subject=QC_SUBJECTS)
            )
        ],
    log:
        f"{LOGS}/plot_subjects_qc/plot_subjects_qc.log",
    benchmark:
        f"{BENCHMARKS}/plot_subjects_qc/plot_subjects_qc.tsv"
    threads: 1
    resources:
        mem_mb=400,
        # about 0.3 s a figure; 2 s a subject leaves a wide margin
        runtime=5 + len(QC_SUBJECTS) // 30,
    params:
        subjects=QC_SUBJECTS,
        n_regions=FIGURE_SETTINGS["qc_regions"],
        dpi=FIGURE_SETTINGS["dpi"],
        code=rule_code("plot_subjects_qc"),
    message:
        f"Quality-control figures of {len(QC_SUBJECTS)} subjects"
    run:
        adapters.plot_subjects_qc(input, output, params, wildcards, log)


# Every figure of a complete run (rule all).
FIGURE_FILES = expand(
    [
        *[f"{CONNECTOME_FIGURE}.{ext}" for ext in ["png", *FIGURE_EXTRA]],
        *[
            f"{MATRIX_FIGURE[kind]}.{ext}"
            for kind in MATRIX_KINDS
            for ext in ["png", *FIGURE_EXTRA]
        ],
        *[f"{CV_FIGURE}.{ext}" for ext in ["png", *FIGURE_EXTRA]],
    ],
    estimate=ESTIMATES,
) + expand(f"{QC_FIGURE}.png", subject=QC_SUBJECTS)


rule scan_qc:
    input:
        sidecars=INPUTS.scan_sidecars,
    output:
        tsv=report(
            PATHS.scans_qc,
            caption="../report/scan_qc.rst",
            category="4. Subject quality control",
            labels={"table": "scans: inclusion and warnings"},
        ),
    log:
        f"{LOGS}/scan_qc/scan_qc.log",
    benchmark:
        f"{BENCHMARKS}/scan_qc/scan_qc.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=200,
        runtime=1,
    params:
        scans=INPUTS.scan_names,
        excluded=dict(INPUTS.excluded),
        code=rule_code("scan_qc"),
    message:
        "Quality table of every scan: in the group stage or not, and why"
    run:
        adapters.scan_qc(input, output, params, wildcards, log)
