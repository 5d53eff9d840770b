# Dataset fmriprep: one job per preprocessed run (a "scan", named by its BIDS
# entities): denoised by config denoise_strategy (nilearn's load_confounds_strategy
# presets, or the seed's highvariance), censored, extracted and cleaned. Runs are
# found, censored and excluded when the workflow is read (common.smk); excluded
# runs are cleaned too (flagged in their sidecar); the group stage concatenates
# the runs of a subject (and session) when concatenate_runs.


wildcard_constraints:
    folder="sub-[A-Za-z0-9]+(/ses-[A-Za-z0-9]+)?",
    stem="sub-[A-Za-z0-9]+(_ses-[A-Za-z0-9]+)?_task-[A-Za-z0-9]+(_[a-z]+-[A-Za-z0-9]+)*",


rule fmriprep_timeseries:
    input:
        unpack(fmriprep_confounds_input),
        bold=lambda wildcards: str(fmriprep_scan(wildcards).bold),
        maps=ATLAS_MAPS,
        labels=atlas_labels_input,
    output:
        tsv=f"{RESULTS}/{{folder}}/func/{{stem}}_timeseries.tsv",
        json=f"{RESULTS}/{{folder}}/func/{{stem}}_timeseries.json",
    log:
        f"{LOGS}/fmriprep_timeseries/{{folder}}/{{stem}}.log",
    benchmark:
        f"{BENCHMARKS}/fmriprep_timeseries/{{folder}}/{{stem}}.tsv"
    threads: 1
    resources:
        mem_mb=800,
        runtime=10,
    params:
        scan=lambda wildcards: SCAN_OF_STEM[wildcards.stem],
        atlas_name=ATLAS_NAME,
        strategy=DENOISE_STRATEGY,
        confound_columns=config["confound_columns"],
        t_r=config["t_r"],
        high_pass=config["high_pass"],
        low_pass=config["low_pass"],
        detrend=config["detrend"],
        standardize=config["standardize"],
        n_high_variance_confounds=config["n_high_variance_confounds"],
        high_variance_percentile=config["high_variance_percentile"],
        min_kept_fraction=MIN_KEPT_FRACTION,
        min_degrees_of_freedom=config["min_degrees_of_freedom"],
        links=DATASET_LINKS,
        code=rule_code("fmriprep_timeseries"),
    message:
        "{params.scan}: region signals ({params.strategy} denoising)"
    run:
        adapters.fmriprep_timeseries(input, output, params, wildcards, log)
