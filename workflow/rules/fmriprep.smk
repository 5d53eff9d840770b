# Dataset fmriprep: one job per preprocessed run (a "scan", named by its BIDS
# entities): denoised by config denoise_strategy (nilearn's load_confounds_strategy
# presets, or the seed's highvariance), censored, extracted and cleaned. Runs are
# found, censored and excluded when the workflow is read (common.smk); excluded
# runs are cleaned too (flagged in their sidecar); the group stage concatenates
# the runs of a subject (and session) when concatenate_runs.


wildcard_constraints:
    folder="sub-[A-Za-z0-9]+(/ses-[A-Za-z0-9]+)?",
    stem="sub-[A-Za-z0-9]+(_ses-[A-Za-z0-9]+)?_task-[A-Za-z0-9]+(_(?!atlas-)[a-z]+-[A-Za-z0-9]+)*",
    post="(_(?!atlas-)[a-z]+-[A-Za-z0-9]+)*",


rule fmriprep_timeseries:
    input:
        unpack(get_fmriprep_confounds),
        bold=get_fmriprep_bold,
        atlases=INPUTS.atlas_files,
    output:
        **PATHS.scan_timeseries_pattern(ATLASES),
    log:
        f"{LOGS}/fmriprep_timeseries/{{folder}}/{{stem}}{{post}}.log",
    benchmark:
        f"{BENCHMARKS}/fmriprep_timeseries/{{folder}}/{{stem}}{{post}}.tsv"
    threads: 1
    resources:
        mem_mb=800,
        runtime=10,
    params:
        scan=get_scan_name,
        atlases=INPUTS.atlas_params,
        strategy=INPUTS.denoise_strategy,
        confound_columns=config["confound_columns"],
        t_r=config["t_r"],
        cleaning=CLEANING,
        n_high_variance_confounds=config["n_high_variance_confounds"],
        high_variance_percentile=config["high_variance_percentile"],
        min_region_coverage=config["min_region_coverage"],
        links=INPUTS.dataset_links,
        code=rule_code("fmriprep_timeseries"),
    message:
        "{params.scan}: region signals ({params.strategy} denoising)"
    run:
        adapters.fmriprep_timeseries(input, output, params, wildcards, log)
