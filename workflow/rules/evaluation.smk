# Science check (Varoquaux et al. 2010): does the group prior help? Held-out
# log-likelihood of each estimator on every run, and, on the synthetic dataset,
# recovery of the known precision structure.


rule heldout_group_sparse:
    input:
        timeseries=GROUP_TIMESERIES,
        regions=PATHS.group_regions,
    output:
        tsv=PATHS.heldout_group_sparse,
    log:
        f"{LOGS}/heldout_group_sparse/atlas-{{atlas}}_fold-{{fold}}.log",
    benchmark:
        f"{BENCHMARKS}/heldout_group_sparse/atlas-{{atlas}}_fold-{{fold}}.tsv"
    wildcard_constraints:
        fold="[0-9]+",
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    params:
        subjects=GROUP_SUBJECTS,
        sizes=GROUP_SIZES,
        n_blocks=config["model_comparison"]["n_blocks"],
        group_sparse=config["group_sparse"],
        code=rule_code("heldout_group_sparse"),
    message:
        "Held-out log-likelihood of the group-sparse fit, atlas {wildcards.atlas}, fold {wildcards.fold}"
    run:
        adapters.heldout_group_sparse(input, output, params, wildcards, log)


# With stability selection on (config stability): the stable set's and the
# extended-BIC alpha's held-out rows, fitted on the same training parts.
rule heldout_stability:
    input:
        timeseries=GROUP_TIMESERIES,
        regions=PATHS.group_regions,
    output:
        tsv=PATHS.heldout_stability,
    log:
        f"{LOGS}/heldout_stability/atlas-{{atlas}}_fold-{{fold}}.log",
    benchmark:
        f"{BENCHMARKS}/heldout_stability/atlas-{{atlas}}_fold-{{fold}}.tsv"
    wildcard_constraints:
        fold="[0-9]+",
    threads: 1
    resources:
        mem_mb=800,
        runtime=60,
    params:
        subjects=GROUP_SUBJECTS,
        sizes=GROUP_SIZES,
        n_blocks=config["model_comparison"]["n_blocks"],
        stability={k: v for k, v in STABILITY.items() if k != "enabled"},
        final_fit={k: config["group_sparse"][k] for k in ("tol", "max_iter")},
        code=rule_code("heldout_stability"),
    message:
        "Held-out log-likelihood of the stable set and the EBIC alpha, atlas {wildcards.atlas}, fold {wildcards.fold}"
    run:
        adapters.heldout_stability(input, output, params, wildcards, log)


rule heldout_subjects:
    input:
        timeseries=get_batch_timeseries,
        regions=PATHS.group_regions,
    output:
        **PATHS.heldout_batch_outputs(INPUTS.has_ground_truth),
    log:
        f"{LOGS}/heldout_subjects/atlas-{{atlas}}_batch-{{batch}}.log",
    benchmark:
        f"{BENCHMARKS}/heldout_subjects/atlas-{{atlas}}_batch-{{batch}}.tsv"
    wildcard_constraints:
        batch="[0-9]+",
    priority: 4
    threads: 1
    resources:
        mem_mb=400,
        runtime=20,
    params:
        subjects=get_batch_units,
        sizes=get_batch_sizes,
        n_blocks=config["model_comparison"]["n_blocks"],
        code=rule_code("heldout_subjects"),
    message:
        "Held-out log-likelihood of graph lasso, Ledoit-Wolf, empirical: atlas {wildcards.atlas}, subjects {params.subjects}"
    run:
        adapters.heldout_subjects(input, output, params, wildcards, log)


rule model_comparison:
    input:
        group_sparse=expand(
            PATHS.heldout_group_sparse,
            fold=range(1, config["model_comparison"]["n_blocks"] + 1),
            allow_missing=True,
        ),
        subjects=expand(
            PATHS.heldout_batch(), batch=SCIENCE_BATCHES, allow_missing=True
        ),
        stability=expand(
            PATHS.heldout_stability,
            fold=(
                range(1, config["model_comparison"]["n_blocks"] + 1)
                if STABILITY["enabled"]
                else []
            ),
            allow_missing=True,
        ),
    output:
        tsv=report(
            PATHS.heldout_loglikelihood,
            caption="../report/model_comparison.rst",
            category="5. Science check",
            labels={"table": "held-out log-likelihood", "atlas": "{atlas}"},
        ),
        figure=report(
            f"{PATHS.group_figure('desc-modelcomparison')}.png",
            caption="../report/model_comparison.rst",
            category="5. Science check",
            labels={"figure": "held-out log-likelihood", "atlas": "{atlas}"},
        ),
    log:
        f"{LOGS}/model_comparison/atlas-{{atlas}}.log",
    benchmark:
        f"{BENCHMARKS}/model_comparison/atlas-{{atlas}}.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        code=rule_code("model_comparison"),
        n_blocks=config["model_comparison"]["n_blocks"],
    message:
        "Held-out log-likelihood, atlas {wildcards.atlas}: group-sparse vs graph lasso, Ledoit-Wolf, empirical"
    run:
        adapters.model_comparison(input, output, params, wildcards, log)


rule recovery_scores:
    input:
        group=rules.group_sparse_covariance.output.npz,
        single=expand(
            PATHS.heldout_batch("npz"), batch=SCIENCE_BATCHES, allow_missing=True
        ),
        truths=expand(PATHS.synthetic_subject["truth"], subject=GROUP_SUBJECTS),
        stability=PATHS.stability if STABILITY["enabled"] else [],
    output:
        tsv=report(
            PATHS.recovery_scores,
            caption="../report/recovery_scores.rst",
            category="5. Science check",
            labels={"table": "ground-truth recovery", "atlas": "{atlas}"},
        ),
        figure=report(
            f"{PATHS.group_figure('desc-recovery')}.png",
            caption="../report/recovery_scores.rst",
            category="5. Science check",
            labels={"figure": "ground-truth recovery", "atlas": "{atlas}"},
        ),
    log:
        f"{LOGS}/recovery_scores/atlas-{{atlas}}.log",
    benchmark:
        f"{BENCHMARKS}/recovery_scores/atlas-{{atlas}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=rule_code("recovery_scores"),
    message:
        "Recovery of the synthetic ground truth, atlas {wildcards.atlas} (support F1, Frobenius error)"
    run:
        adapters.recovery_scores(input, output, params, wildcards, log)
