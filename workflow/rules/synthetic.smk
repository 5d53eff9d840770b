# The synthetic dataset (dataset: synthetic): a probabilistic atlas with a known
# sparse group precision structure, then one generated subject per job. Ground
# truth is written beside the inputs, under {resources_dir}/synthetic/.


rule synthetic_atlas:
    output:
        maps=PATHS.synthetic_atlas["maps"],
        labels=PATHS.synthetic_atlas["labels"],
        truth=PATHS.synthetic_atlas["truth"],
        dseg=PATHS.synthetic_atlas["dseg"],
        dseg_table=PATHS.synthetic_atlas["dseg_table"],
    log:
        f"{LOGS}/synthetic_atlas/synthetic_atlas.log",
    benchmark:
        f"{BENCHMARKS}/synthetic_atlas/synthetic_atlas.tsv"
    threads: 1
    resources:
        mem_mb=300,
        runtime=5,
    params:
        n_regions=config["synthetic"]["n_regions"],
        seed=config["synthetic"]["seed"],
        code=rule_code("synthetic_atlas"),
    message:
        "Generating a synthetic atlas of {params.n_regions} maps (seed {params.seed})"
    run:
        adapters.synthetic_atlas(input, output, params, wildcards, log)


rule synthetic_subject:
    input:
        atlas_truth=PATHS.synthetic_atlas["truth"],
    output:
        func=PATHS.synthetic_subject["func"],
        confounds=PATHS.synthetic_subject["confounds"],
        truth=PATHS.synthetic_subject["truth"],
    log:
        f"{LOGS}/synthetic_subject/{{subject}}.log",
    benchmark:
        f"{BENCHMARKS}/synthetic_subject/{{subject}}.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        subject_index=get_synthetic_index,
        seed=config["synthetic"]["seed"],
        n_volumes=config["synthetic"]["n_volumes"],
        t_r=config["synthetic"]["t_r"],
        n_file_confounds=config["synthetic"]["n_file_confounds"],
        code=rule_code("synthetic_subject"),
    message:
        "sub-{wildcards.subject}: generating {params.n_volumes} synthetic volumes"
    run:
        adapters.synthetic_subject(input, output, params, wildcards, log)
