# Per-subject rule: one streamed read of the image gives its high-variance
# confounds and every atlas's region signals, then cleaned (docs/algorithms.md). Outputs are named in
# src/sparseconn/workflow/paths.py, under {results_dir}/sub-{subject}/func/. The science settings are
# params, so that changing one reruns exactly the jobs it feeds.


rule extract_timeseries:
    input:
        func=get_func,
        atlases=INPUTS.atlas_files,
        confounds=get_confounds,
    output:
        tsv=expand(PATHS.subject_timeseries(), atlas=ATLASES, allow_missing=True),
        json=expand(PATHS.subject_timeseries("json"), atlas=ATLASES, allow_missing=True),
        high_variance_confounds=PATHS.high_variance_confounds,
        regions=expand(PATHS.subject_regions, atlas=ATLASES, allow_missing=True),
    log:
        f"{LOGS}/extract_timeseries/{{subject}}.log",
    benchmark:
        f"{BENCHMARKS}/extract_timeseries/{{subject}}.tsv"
    threads: 1
    resources:
        mem_mb=800,
        runtime=10,
    params:
        atlases=INPUTS.atlas_params,
        sheet_t_r=get_sheet_t_r,
        config_t_r=get_config_t_r,
        cleaning=CLEANING,
        n_high_variance_confounds=config["n_high_variance_confounds"],
        high_variance_percentile=config["high_variance_percentile"],
        min_region_coverage=config["min_region_coverage"],
        links=INPUTS.dataset_links,
        code=rule_code("extract_timeseries"),
    message:
        "sub-{wildcards.subject}: high-variance confounds and region signals of atlases "
        + ", ".join(ATLASES)
    run:
        adapters.extract_timeseries(input, output, params, wildcards, log)
