# Figures under {results_dir}/figures/, each one a report() item for
# `snakemake --report`: the plotted subject's connectome and matrices for both
# estimates, the cross-validation curves, and one quality-control figure per
# subject. Drawn with matplotlib only (src/sparseconn/plotting.py).

from sparseconn.workflow.methods import methods_settings

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
QCFC_FIGURE = PATHS.group_figure("desc-qcfc")
QC_FIGURE = PATHS.qc_figure
# The estimate's group .npz (desc-groupsparse or desc-graphlasso).
GROUP_NPZ = PATHS.group_connectome("{estimate}")
# Stability selection's figures (config stability), by kind; none when it is off.
STABILITY_FIGURES = {
    "stability_path": PATHS.group_figure("desc-stability_path"),
    "selection_probability": PATHS.group_figure(
        "stat-selectionprobability_desc-groupsparse_matrix"
    ),
    "stable_connectome": PATHS.plotted_figure(
        PLOTTED_LABEL, "desc-groupsparsestable_connectome"
    ),
}
STABILITY_CAPTIONS = {
    "stability_path": "stability path",
    "selection_probability": "selection probability",
    "stable_connectome": "stable connectome",
}
STABILITY_FIGURE_KINDS = list(STABILITY_FIGURES) if STABILITY["enabled"] else []


wildcard_constraints:
    estimate="|".join(ESTIMATES),


# Every group-level figure of both estimates in one job of its own process: one
# matplotlib import, and no figure drawn beside another in a thread.
rule plot_group_figures:
    input:
        npz=expand(GROUP_NPZ, estimate=ESTIMATES, allow_missing=True),
        atlas=get_atlas_files,
        stability=PATHS.stability if STABILITY["enabled"] else [],
        truth=get_stability_truth,
        qcfc_tsv=PATHS.qcfc("tsv"),
        qcfc_json=PATHS.qcfc("json"),
    output:
        **{
            kind: [
                report(
                    f"{STABILITY_FIGURES[kind]}.png",
                    caption=f"../report/{kind}.rst",
                    category="6. Stability selection",
                    labels={"figure": STABILITY_CAPTIONS[kind], "atlas": "{atlas}"},
                )
            ]
            for kind in STABILITY_FIGURE_KINDS
        },
        **{
            f"{kind}_svg": [f"{STABILITY_FIGURES[kind]}.{ext}" for ext in FIGURE_EXTRA]
            for kind in STABILITY_FIGURE_KINDS
        },
        qcfc=report(
            f"{QCFC_FIGURE}.png",
            caption="../report/qcfc.rst",
            category="4. Subject quality control",
            labels={"figure": "QC-FC: edges vs mean FD", "atlas": "{atlas}"},
        ),
        connectome=[
            report(
                png,
                caption="../report/connectome.rst",
                category="1. Connectomes",
                labels={
                    "estimate": estimate,
                    "subject": PLOT_SUBJECT,
                    "atlas": "{atlas}",
                },
            )
            for estimate, png in zip(
                ESTIMATES,
                expand(
                    f"{CONNECTOME_FIGURE}.png", estimate=ESTIMATES, allow_missing=True
                ),
            )
        ],
        connectome_svg=[
            file
            for ext in FIGURE_EXTRA
            for file in expand(
                f"{CONNECTOME_FIGURE}.{ext}", estimate=ESTIMATES, allow_missing=True
            )
        ],
        covariance=[
            report(
                png,
                caption="../report/matrix_covariance.rst",
                category="2. Matrices",
                subcategory=estimate,
                labels={
                    "estimate": estimate,
                    "matrix": "covariance",
                    "atlas": "{atlas}",
                },
            )
            for estimate, png in zip(
                ESTIMATES,
                expand(
                    f"{MATRIX_FIGURE['covariance']}.png",
                    estimate=ESTIMATES,
                    allow_missing=True,
                ),
            )
        ],
        covariance_svg=[
            file
            for ext in FIGURE_EXTRA
            for file in expand(
                f"{MATRIX_FIGURE['covariance']}.{ext}",
                estimate=ESTIMATES,
                allow_missing=True,
            )
        ],
        sparsity=[
            report(
                png,
                caption="../report/matrix_sparsity.rst",
                category="2. Matrices",
                subcategory=estimate,
                labels={
                    "estimate": estimate,
                    "matrix": "sparsity",
                    "atlas": "{atlas}",
                },
            )
            for estimate, png in zip(
                ESTIMATES,
                expand(
                    f"{MATRIX_FIGURE['sparsity']}.png",
                    estimate=ESTIMATES,
                    allow_missing=True,
                ),
            )
        ],
        sparsity_svg=[
            file
            for ext in FIGURE_EXTRA
            for file in expand(
                f"{MATRIX_FIGURE['sparsity']}.{ext}",
                estimate=ESTIMATES,
                allow_missing=True,
            )
        ],
        precision=[
            report(
                png,
                caption="../report/matrix_precision.rst",
                category="2. Matrices",
                subcategory=estimate,
                labels={
                    "estimate": estimate,
                    "matrix": "precision",
                    "atlas": "{atlas}",
                },
            )
            for estimate, png in zip(
                ESTIMATES,
                expand(
                    f"{MATRIX_FIGURE['precision']}.png",
                    estimate=ESTIMATES,
                    allow_missing=True,
                ),
            )
        ],
        precision_svg=[
            file
            for ext in FIGURE_EXTRA
            for file in expand(
                f"{MATRIX_FIGURE['precision']}.{ext}",
                estimate=ESTIMATES,
                allow_missing=True,
            )
        ],
        cv=[
            report(
                png,
                caption="../report/cv_curve.rst",
                category="3. Cross-validation",
                labels={"estimate": estimate, "atlas": "{atlas}"},
            )
            for estimate, png in zip(
                ESTIMATES,
                expand(f"{CV_FIGURE}.png", estimate=ESTIMATES, allow_missing=True),
            )
        ],
        cv_svg=[
            file
            for ext in FIGURE_EXTRA
            for file in expand(
                f"{CV_FIGURE}.{ext}", estimate=ESTIMATES, allow_missing=True
            )
        ],
    log:
        f"{LOGS}/plot_group_figures/atlas-{{atlas}}.log",
    benchmark:
        f"{BENCHMARKS}/plot_group_figures/atlas-{{atlas}}.tsv"
    priority: 3
    threads: 1
    resources:
        mem_mb=800,
        runtime=10,
    params:
        atlas=get_atlas_param,
        estimates=ESTIMATES,
        subject=PLOT_SUBJECT,
        edge_threshold=FIGURE_SETTINGS["edge_threshold"],
        max_edges=FIGURE_SETTINGS["max_edges"],
        dpi=FIGURE_SETTINGS["dpi"],
        code=rule_code("plot_group_figures"),
    message:
        "Connectome, matrix and cross-validation figures (sub-{params.subject}, atlas {wildcards.atlas})"
    run:
        adapters.plot_group_figures(input, output, params, wildcards, log)


# Subjects with a quality-control figure (none when figures.subject_qc is false).
QC_SUBJECTS = SUBJECTS if FIGURE_SETTINGS["subject_qc"] else []


# Every subject's quality-control figure in one job of its own process.
rule plot_subjects_qc:
    input:
        confounds=expand(PATHS.high_variance_confounds, subject=QC_SUBJECTS),
        timeseries=expand(
            PATHS.subject_timeseries(), subject=QC_SUBJECTS, allow_missing=True
        ),
        sidecar=expand(
            PATHS.subject_timeseries("json"), subject=QC_SUBJECTS, allow_missing=True
        ),
    output:
        png=[
            report(
                png,
                caption="../report/subject_qc.rst",
                category="4. Subject quality control",
                labels={"subject": subject, "atlas": "{atlas}"},
            )
            for subject, png in zip(
                QC_SUBJECTS,
                expand(f"{QC_FIGURE}.png", subject=QC_SUBJECTS, allow_missing=True),
            )
        ],
    log:
        f"{LOGS}/plot_subjects_qc/atlas-{{atlas}}.log",
    benchmark:
        f"{BENCHMARKS}/plot_subjects_qc/atlas-{{atlas}}.tsv"
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
        f"Quality-control figures of {len(QC_SUBJECTS)} subjects, atlas {{wildcards.atlas}}"
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
    atlas=ATLASES,
)
FIGURE_FILES += expand(
    [
        f"{STABILITY_FIGURES[kind]}.{ext}"
        for kind in STABILITY_FIGURE_KINDS
        for ext in ["png", *FIGURE_EXTRA]
    ],
    atlas=ATLASES,
)
FIGURE_FILES += expand(f"{QCFC_FIGURE}.png", atlas=ATLASES)


rule scan_qc:
    input:
        sidecars=INPUTS.scan_sidecars,
    output:
        tsv=report(
            PATHS.scans_qc,
            caption="../report/scan_qc.rst",
            category="4. Subject quality control",
            labels={"table": "scans: inclusion and warnings", "atlas": "{atlas}"},
        ),
    log:
        f"{LOGS}/scan_qc/atlas-{{atlas}}.log",
    benchmark:
        f"{BENCHMARKS}/scan_qc/atlas-{{atlas}}.tsv"
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
        "Quality table of every scan, atlas {wildcards.atlas}: in the group stage or not, and why"
    run:
        adapters.scan_qc(input, output, params, wildcards, log)


# QC-FC (Ciric et al. 2017): across the group stage's elements, the correlation of
# each edge with mean framewise displacement; and the group QC page of the report
# (the scans' QC table and the QC-FC summary).
rule group_qc:
    input:
        timeseries=GROUP_TIMESERIES,
        sidecars=INPUTS.units_sidecars(GROUP_SUBJECTS),
        regions=PATHS.group_regions,
        scans_qc=PATHS.scans_qc,
    output:
        tsv=PATHS.qcfc("tsv"),
        json=PATHS.qcfc("json"),
        html=report(
            PATHS.group_qc_page,
            caption="../report/group_qc.rst",
            category="4. Subject quality control",
            labels={"table": "group QC: motion, censoring, QC-FC", "atlas": "{atlas}"},
        ),
    log:
        f"{LOGS}/group_qc/atlas-{{atlas}}.log",
    benchmark:
        f"{BENCHMARKS}/group_qc/atlas-{{atlas}}.tsv"
    priority: 3
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        units=GROUP_SUBJECTS,
        sizes=GROUP_SIZES,
        code=rule_code("group_qc"),
    message:
        "Group QC, atlas {wildcards.atlas}: QC-FC (edges vs mean framewise displacement) and the QC page"
    run:
        adapters.group_qc(input, output, params, wildcards, log)


# BIDS participants.tsv: every participant, and whether it entered the group stage.
rule participants:
    input:
        scans_qc=expand(PATHS.scans_qc, atlas=ATLASES),
    output:
        tsv=PATHS.participants("tsv"),
        json=PATHS.participants("json"),
    log:
        f"{LOGS}/participants/participants.log",
    benchmark:
        f"{BENCHMARKS}/participants/participants.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=200,
        runtime=1,
    params:
        code=rule_code("participants"),
    message:
        "participants.tsv: every participant, in the group stage or not"
    run:
        adapters.participants(input, output, params, wildcards, log)


# What the methods paragraph says of the run (settings differing from the schema's
# defaults included), and the paragraph (on the report's front page).
METHODS_SETTINGS = methods_settings(INPUTS, config_schema)


rule methods:
    input:
        groupsparse=expand(PATHS.group_connectome("groupsparse"), atlas=ATLASES),
        graphlasso=expand(PATHS.group_connectome("graphlasso"), atlas=ATLASES),
        qcfc=expand(PATHS.qcfc("json"), atlas=ATLASES),
        sidecars=expand(INPUTS.units_sidecars([PLOT_SUBJECT])[0], atlas=ATLASES),
    output:
        rst=PATHS.methods,
    log:
        f"{LOGS}/methods/methods.log",
    benchmark:
        f"{BENCHMARKS}/methods/methods.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=200,
        runtime=1,
    params:
        atlases=ATLASES,
        settings=METHODS_SETTINGS,
        code=rule_code("methods"),
    message:
        "The methods paragraph of the run"
    run:
        adapters.methods(input, output, params, wildcards, log)
