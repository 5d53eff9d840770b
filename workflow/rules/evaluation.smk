# Science check (Varoquaux et al. 2010): does the group prior help? Held-out
# log-likelihood of each estimator on every run, and, on the synthetic dataset,
# recovery of the known precision structure.


rule model_comparison:
    input:
        timeseries=GROUP_TIMESERIES,
    output:
        tsv=report(
            PATHS.heldout_loglikelihood,
            caption="../report/model_comparison.rst",
            category="5. Science check",
            labels={"table": "held-out log-likelihood"},
        ),
        figure=report(
            f"{PATHS.group_figure('desc-modelcomparison')}.png",
            caption="../report/model_comparison.rst",
            category="5. Science check",
            labels={"figure": "held-out log-likelihood"},
        ),
    log:
        f"{LOGS}/model_comparison/model_comparison.log",
    benchmark:
        f"{BENCHMARKS}/model_comparison/model_comparison.tsv"
    conda:
        "../../envs/sparseconn.yaml"
    threads: 2
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        subjects=GROUP_SUBJECTS,
        sizes=GROUP_SIZES,
        n_blocks=config["model_comparison"]["n_blocks"],
        group_sparse=config["group_sparse"],
        code=rule_code("model_comparison"),
    message:
        "Held-out log-likelihood: group-sparse vs graph lasso, Ledoit-Wolf, empirical"
    script:
        "../../scripts/model_comparison.py"


rule recovery_scores:
    input:
        group=rules.group_sparse_covariance.output.npz,
        graph_lasso=expand(
            PATHS.relmat("precision", "graphlasso"), subject=GROUP_SUBJECTS
        ),
        timeseries=expand(
            PATHS.subject_timeseries(),
            subject=GROUP_SUBJECTS,
        ),
        truths=expand(PATHS.synthetic_subject["truth"], subject=GROUP_SUBJECTS),
    output:
        tsv=report(
            PATHS.recovery_scores,
            caption="../report/recovery_scores.rst",
            category="5. Science check",
            labels={"table": "ground-truth recovery"},
        ),
        figure=report(
            f"{PATHS.group_figure('desc-recovery')}.png",
            caption="../report/recovery_scores.rst",
            category="5. Science check",
            labels={"figure": "ground-truth recovery"},
        ),
    log:
        f"{LOGS}/recovery_scores/recovery_scores.log",
    benchmark:
        f"{BENCHMARKS}/recovery_scores/recovery_scores.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=rule_code("recovery_scores"),
    message:
        "Recovery of the synthetic ground truth (support F1, Frobenius error)"
    run:
        adapters.recovery_scores(input, output, params, wildcards, log)
