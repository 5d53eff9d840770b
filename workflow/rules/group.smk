# Group stage: the cross-validated group-sparse inverse covariance of all subjects
# (our implementation of Varoquaux et al. 2010) and scikit-learn's graph lasso on
# the plotted subject (and on every subject with graph_lasso.per_subject).


# Time series of the group stage's elements (subjects, or fMRIPrep units whose
# runs are concatenated), flat, and the number of files of each element.
GROUP_TIMESERIES, GROUP_SIZES = INPUTS.units_timeseries(GROUP_SUBJECTS)
PLOTTED_TIMESERIES, PLOTTED_SIZES = INPUTS.units_timeseries([PLOT_SUBJECT])


# Region table of every scan of the group stage, and the scans' names.
GROUP_REGION_TABLES, GROUP_SCANS = INPUTS.group_region_tables()


# The regions every group fit of an atlas uses: usable (covered, not constant) in
# every scan of the group stage; the others are listed with their reasons.
rule group_regions:
    input:
        tables=GROUP_REGION_TABLES,
    output:
        tsv=report(
            PATHS.group_regions,
            caption="../report/group_regions.rst",
            category="4. Subject quality control",
            labels={"table": "regions: kept or dropped, and why", "atlas": "{atlas}"},
        ),
    log:
        f"{LOGS}/group_regions/atlas-{{atlas}}.log",
    benchmark:
        f"{BENCHMARKS}/group_regions/atlas-{{atlas}}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=200,
        runtime=1,
    params:
        scans=GROUP_SCANS,
        strict=config["strict_regions"],
        code=rule_code("group_regions"),
    message:
        "Regions of the group stage, atlas {wildcards.atlas}: usable in every scan"
    run:
        adapters.group_regions(input, output, params, wildcards, log)


rule group_sparse_covariance:
    input:
        timeseries=GROUP_TIMESERIES,
        regions=PATHS.group_regions,
    output:
        npz=PATHS.group_connectome("groupsparse"),
        covariances=[
            INPUTS.unit_relmat(u, "covariance", "groupsparse") for u in GROUP_SUBJECTS
        ],
        precisions=[
            INPUTS.unit_relmat(u, "precision", "groupsparse") for u in GROUP_SUBJECTS
        ],
        # one sidecar per statistic, inherited by every subject's relmat (BIDS
        # inheritance): the same estimator, alpha and regions for all of them
        covariance_sidecar=PATHS.group_relmat_sidecar("covariance", "groupsparse"),
        precision_sidecar=PATHS.group_relmat_sidecar("precision", "groupsparse"),
    log:
        f"{LOGS}/group_sparse_covariance/atlas-{{atlas}}.log",
    benchmark:
        f"{BENCHMARKS}/group_sparse_covariance/atlas-{{atlas}}.tsv"
    priority: 3
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    params:
        subjects=GROUP_SUBJECTS,
        sizes=GROUP_SIZES,
        settings=config["group_sparse"],
        links=INPUTS.dataset_links,
        code=rule_code("group_sparse_covariance"),
    message:
        "Group-sparse inverse covariance of the group subjects, atlas {wildcards.atlas} (cross-validated)"
    run:
        adapters.group_sparse_covariance(input, output, params, wildcards, log)


rule graph_lasso:
    input:
        timeseries=PLOTTED_TIMESERIES,
        regions=PATHS.group_regions,
    output:
        npz=PATHS.group_connectome("graphlasso"),
        covariance=INPUTS.unit_relmat(PLOT_SUBJECT, "covariance", "graphlasso"),
        precision=INPUTS.unit_relmat(PLOT_SUBJECT, "precision", "graphlasso"),
        covariance_sidecar=INPUTS.unit_relmat(
            PLOT_SUBJECT, "covariance", "graphlasso", "json"
        ),
        precision_sidecar=INPUTS.unit_relmat(
            PLOT_SUBJECT, "precision", "graphlasso", "json"
        ),
    log:
        f"{LOGS}/graph_lasso/atlas-{{atlas}}.log",
    benchmark:
        f"{BENCHMARKS}/graph_lasso/atlas-{{atlas}}.tsv"
    priority: 3
    threads: 1
    resources:
        mem_mb=400,
        runtime=10,
    params:
        subject=PLOT_SUBJECT,
        links=INPUTS.dataset_links,
        code=rule_code("graph_lasso"),
    message:
        "Graph lasso (GraphicalLassoCV) of the plotted subject {params.subject}, atlas {wildcards.atlas}"
    run:
        adapters.graph_lasso(input, output, params, wildcards, log)


rule graph_lasso_subject:
    input:
        timeseries=PATHS.subject_timeseries(),
        regions=PATHS.group_regions,
    output:
        covariance=PATHS.relmat("covariance", "graphlasso"),
        precision=PATHS.relmat("precision", "graphlasso"),
        covariance_sidecar=PATHS.relmat("covariance", "graphlasso", "json"),
        precision_sidecar=PATHS.relmat("precision", "graphlasso", "json"),
    log:
        f"{LOGS}/graph_lasso_subject/{{subject}}_atlas-{{atlas}}.log",
    benchmark:
        f"{BENCHMARKS}/graph_lasso_subject/{{subject}}_atlas-{{atlas}}.tsv"
    wildcard_constraints:
        # the plotted subject's matrices come from rule graph_lasso
        subject=INPUTS.other_subjects_pattern,
    threads: 1
    resources:
        mem_mb=400,
        runtime=10,
    params:
        subject="{subject}",
        links=INPUTS.dataset_links,
        code=rule_code("graph_lasso_subject"),
    message:
        "sub-{wildcards.subject}: graph lasso (GraphicalLassoCV), atlas {wildcards.atlas}"
    run:
        adapters.graph_lasso_subject(input, output, params, wildcards, log)


# Stability selection of the group-sparse edges (config stability; off by
# default): the same signals as the group-sparse fit, its CV alpha in the
# sidecars beside the extended-BIC one.
STABILITY = config["stability"]


rule stability_selection:
    input:
        timeseries=GROUP_TIMESERIES,
        regions=PATHS.group_regions,
        group=PATHS.group_connectome("groupsparse"),
    output:
        npz=PATHS.stability,
        probabilities=[
            INPUTS.unit_relmat(u, "selectionprobability", "groupsparse")
            for u in GROUP_SUBJECTS
        ],
        precisions=[
            INPUTS.unit_relmat(u, "precision", "groupsparsestable")
            for u in GROUP_SUBJECTS
        ],
        probability_sidecar=PATHS.group_relmat_sidecar(
            "selectionprobability", "groupsparse"
        ),
        precision_sidecar=PATHS.group_relmat_sidecar("precision", "groupsparsestable"),
    log:
        f"{LOGS}/stability_selection/atlas-{{atlas}}.log",
    benchmark:
        f"{BENCHMARKS}/stability_selection/atlas-{{atlas}}.tsv"
    threads: 1
    resources:
        mem_mb=800,
        runtime=60,
    params:
        subjects=GROUP_SUBJECTS,
        sizes=GROUP_SIZES,
        settings={k: v for k, v in STABILITY.items() if k != "enabled"},
        final_fit={k: config["group_sparse"][k] for k in ("tol", "max_iter")},
        links=INPUTS.dataset_links,
        code=rule_code("stability_selection"),
    message:
        "Stability selection of the group-sparse edges, atlas {wildcards.atlas} ({params.settings[n_resamples]} halves)"
    run:
        adapters.stability_selection(input, output, params, wildcards, log)
