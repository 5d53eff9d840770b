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


rule plot_connectome:
    input:
        npz=GROUP_NPZ,
        maps=INPUTS.atlas.maps,
        labels=get_atlas_labels,
    output:
        png=report(
            f"{CONNECTOME_FIGURE}.png",
            caption="../report/connectome.rst",
            category="1. Connectomes",
            labels={"estimate": "{estimate}", "subject": PLOT_SUBJECT},
        ),
        svg=[f"{CONNECTOME_FIGURE}.{ext}" for ext in FIGURE_EXTRA],
    log:
        f"{LOGS}/plot_connectome/{{estimate}}.log",
    benchmark:
        f"{BENCHMARKS}/plot_connectome/{{estimate}}.tsv"
    threads: 1
    resources:
        mem_mb=800,
        runtime=5,
    params:
        subject=PLOT_SUBJECT,
        edge_threshold=FIGURE_SETTINGS["edge_threshold"],
        dpi=FIGURE_SETTINGS["dpi"],
        code=rule_code("plot_connectome"),
    message:
        "Connectome figure of sub-{params.subject} ({wildcards.estimate})"
    run:
        adapters.plot_connectome(input, output, params, wildcards, log)


rule plot_matrices:
    input:
        npz=GROUP_NPZ,
        labels=get_atlas_labels,
    output:
        # each: the PNG (in the report), then its SVG when configured
        covariance=[
            report(
                f"{MATRIX_FIGURE['covariance']}.png",
                caption="../report/matrix_covariance.rst",
                category="2. Matrices",
                subcategory="{estimate}",
                labels={"estimate": "{estimate}", "matrix": "covariance"},
            ),
            *[f"{MATRIX_FIGURE['covariance']}.{ext}" for ext in FIGURE_EXTRA],
        ],
        sparsity=[
            report(
                f"{MATRIX_FIGURE['sparsity']}.png",
                caption="../report/matrix_sparsity.rst",
                category="2. Matrices",
                subcategory="{estimate}",
                labels={"estimate": "{estimate}", "matrix": "sparsity"},
            ),
            *[f"{MATRIX_FIGURE['sparsity']}.{ext}" for ext in FIGURE_EXTRA],
        ],
        precision=[
            report(
                f"{MATRIX_FIGURE['precision']}.png",
                caption="../report/matrix_precision.rst",
                category="2. Matrices",
                subcategory="{estimate}",
                labels={"estimate": "{estimate}", "matrix": "precision"},
            ),
            *[f"{MATRIX_FIGURE['precision']}.{ext}" for ext in FIGURE_EXTRA],
        ],
    log:
        f"{LOGS}/plot_matrices/{{estimate}}.log",
    benchmark:
        f"{BENCHMARKS}/plot_matrices/{{estimate}}.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        subject=PLOT_SUBJECT,
        dpi=FIGURE_SETTINGS["dpi"],
        code=rule_code("plot_matrices"),
    message:
        "Covariance, sparsity and precision figures of sub-{params.subject} "
        "({wildcards.estimate})"
    run:
        adapters.plot_matrices(input, output, params, wildcards, log)


rule plot_cv_curve:
    input:
        npz=GROUP_NPZ,
    output:
        png=report(
            f"{CV_FIGURE}.png",
            caption="../report/cv_curve.rst",
            category="3. Cross-validation",
            labels={"estimate": "{estimate}"},
        ),
        svg=[f"{CV_FIGURE}.{ext}" for ext in FIGURE_EXTRA],
    log:
        f"{LOGS}/plot_cv_curve/{{estimate}}.log",
    benchmark:
        f"{BENCHMARKS}/plot_cv_curve/{{estimate}}.tsv"
    threads: 1
    resources:
        mem_mb=300,
        runtime=5,
    params:
        dpi=FIGURE_SETTINGS["dpi"],
        code=rule_code("plot_cv_curve"),
    message:
        "Cross-validation curve ({wildcards.estimate})"
    run:
        adapters.plot_cv_curve(input, output, params, wildcards, log)


rule plot_subject_qc:
    input:
        confounds=PATHS.high_variance_confounds,
        timeseries=PATHS.subject_timeseries(),
        sidecar=PATHS.subject_timeseries("json"),
    output:
        png=report(
            f"{QC_FIGURE}.png",
            caption="../report/subject_qc.rst",
            category="4. Subject quality control",
            labels={"subject": "{subject}"},
        ),
    log:
        f"{LOGS}/plot_subject_qc/{{subject}}.log",
    benchmark:
        f"{BENCHMARKS}/plot_subject_qc/{{subject}}.tsv"
    threads: 1
    resources:
        mem_mb=300,
        runtime=5,
    params:
        subject="{subject}",
        n_regions=FIGURE_SETTINGS["qc_regions"],
        dpi=FIGURE_SETTINGS["dpi"],
        code=rule_code("plot_subject_qc"),
    message:
        "sub-{wildcards.subject}: quality-control figure"
    run:
        adapters.plot_subject_qc(input, output, params, wildcards, log)


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
) + expand(
    f"{QC_FIGURE}.png", subject=SUBJECTS if FIGURE_SETTINGS["subject_qc"] else []
)


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
