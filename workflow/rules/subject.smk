# Per-subject rules: high-variance confounds, then the atlas's region signals,
# extracted and cleaned (docs/algorithms.md). Outputs are named in
# src/sparseconn/workflow/paths.py, under {results_dir}/sub-{subject}/func/. The science settings are
# params, so that changing one reruns exactly the jobs it feeds.


rule high_variance_confounds:
    input:
        func=get_func,
    output:
        tsv=PATHS.high_variance_confounds,
    log:
        f"{LOGS}/high_variance_confounds/{{subject}}.log",
    benchmark:
        f"{BENCHMARKS}/high_variance_confounds/{{subject}}.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        n_confounds=config["n_high_variance_confounds"],
        percentile=config["high_variance_percentile"],
        code=rule_code("high_variance_confounds"),
    message:
        "sub-{wildcards.subject}: {params.n_confounds} high-variance confounds"
    run:
        adapters.high_variance_confounds(input, output, params, wildcards, log)


rule extract_timeseries:
    input:
        func=get_func,
        maps=INPUTS.atlas.maps,
        labels=get_atlas_labels,
        confounds=get_confounds,
    output:
        tsv=PATHS.subject_timeseries(),
        json=PATHS.subject_timeseries("json"),
    log:
        f"{LOGS}/extract_timeseries/{{subject}}.log",
    benchmark:
        f"{BENCHMARKS}/extract_timeseries/{{subject}}.tsv"
    threads: 1
    resources:
        mem_mb=600,
        runtime=10,
    params:
        atlas_name=ATLAS_NAME,
        sheet_t_r=get_sheet_t_r,
        config_t_r=get_config_t_r,
        cleaning=CLEANING,
        links=INPUTS.dataset_links,
        code=rule_code("extract_timeseries"),
    message:
        "sub-{wildcards.subject}: region signals of atlas {params.atlas_name}"
    run:
        adapters.extract_timeseries(input, output, params, wildcards, log)
