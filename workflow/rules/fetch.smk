# Downloads: the MSDL atlas, the ADHD-40 subjects and their phenotypic table
# (dataset adhd), the development subjects (dataset development: its
# participants table is fetched when the workflow is read), and the http(s) URLs
# of a subjects sheet (dataset sheet).
# Local rules (they need the internet, which compute nodes may lack); each takes
# one unit of the `downloads` resource, so `--resources downloads=N` caps the
# parallel connections. Archives go to {resources_dir}/adhd/downloads/ (resumable
# .part files), are checked against config/adhd.yaml's checksums or the SHA-256
# recorded in checksums.lock.json at their first download, read whole and
# validated with their members before anything is recorded or named, and are
# deleted once their members are extracted. No `code` param: the bytes come from
# the hosts. `retries: 0` (also over a profile's or the command line's --retries):
# the downloader retries transient failures itself (config download_attempts and
# download_timeout), so an error that cannot go away (HTTP 404, a checksum
# mismatch, an unsafe archive) is reported once, not once per Snakemake attempt.


localrules:
    fetch_atlas,
    fetch_subject,
    fetch_development_subject,
    fetch_phenotypes,
    fetch_sheet_file,


rule fetch_atlas:
    output:
        maps=PATHS.adhd_atlas["maps"],
        labels=PATHS.adhd_atlas["labels"],
    log:
        f"{LOGS}/fetch_atlas/fetch_atlas.log",
    benchmark:
        f"{BENCHMARKS}/fetch_atlas/fetch_atlas.tsv"
    retries: 0
    conda:
        "../../envs/sparseconn.yaml"
    threads: 1
    resources:
        downloads=1,
        mem_mb=200,
        runtime=30,
    params:
        url=INPUTS.msdl_url,
        checksum=INPUTS.msdl_checksum,
        archive=PATHS.adhd_download("MSDL_rois.zip"),
        lock=PATHS.adhd_lock,
        maps_member=fetch.MSDL_MAPS_MEMBER,
        labels_member=fetch.MSDL_LABELS_MEMBER,
    message:
        "Downloading the MSDL atlas from {params.url}"
    script:
        "../../scripts/fetch_atlas.py"


rule fetch_subject:
    output:
        func=PATHS.adhd_subject["func"],
        confounds=PATHS.adhd_subject["confounds"],
    log:
        f"{LOGS}/fetch_subject/{{subject}}.log",
    benchmark:
        f"{BENCHMARKS}/fetch_subject/{{subject}}.tsv"
    wildcard_constraints:
        subject="|".join(fetch.ADHD_SUBJECTS),
    retries: 0
    conda:
        "../../envs/sparseconn.yaml"
    threads: 1
    resources:
        downloads=1,
        mem_mb=200,
        runtime=60,
    params:
        url=get_adhd_subject_url,
        checksum=get_adhd_subject_checksum,
        archive=get_adhd_subject_download,
        lock=PATHS.adhd_lock,
        members=get_adhd_subject_members,
    message:
        "sub-{wildcards.subject}: downloading {params.url}"
    script:
        "../../scripts/fetch_subject.py"


rule fetch_development_subject:
    output:
        func=PATHS.development_subject["func"],
        confounds=PATHS.development_subject["confounds"],
        reduced_confounds=PATHS.development_subject["reduced_confounds"],
    log:
        f"{LOGS}/fetch_development_subject/{{subject}}.log",
    benchmark:
        f"{BENCHMARKS}/fetch_development_subject/{{subject}}.tsv"
    wildcard_constraints:
        subject="pixar[0-9]+",
    retries: 0
    conda:
        "../../envs/sparseconn.yaml"
    threads: 1
    resources:
        downloads=1,
        mem_mb=200,
        runtime=60,
    params:
        urls=get_development_urls,
        checksums=get_development_checksums,
        lock=PATHS.development_lock,
    message:
        "sub-{wildcards.subject}: downloading its image and confounds"
    script:
        "../../scripts/fetch_development_subject.py"


rule fetch_phenotypes:
    output:
        csv=PATHS.adhd_phenotypes,
    log:
        f"{LOGS}/fetch_phenotypes/fetch_phenotypes.log",
    benchmark:
        f"{BENCHMARKS}/fetch_phenotypes/fetch_phenotypes.tsv"
    retries: 0
    conda:
        "../../envs/sparseconn.yaml"
    threads: 1
    resources:
        downloads=1,
        mem_mb=200,
        runtime=10,
    params:
        url=INPUTS.adhd.phenotypes_url,
        checksum=INPUTS.adhd.checksums.get("adhd40_metadata.tgz"),
        archive=PATHS.adhd_download("adhd40_metadata.tgz"),
        lock=PATHS.adhd_lock,
        member=fetch.ADHD_PHENOTYPES_MEMBER,
    message:
        "Downloading the ADHD-40 phenotypic table from {params.url}"
    script:
        "../../scripts/fetch_phenotypes.py"


rule fetch_sheet_file:
    output:
        f"{PATHS.sheet_downloads}/{{subject}}/{{column}}/{{filename}}",
    log:
        f"{LOGS}/fetch_sheet_file/{{subject}}_{{column}}_{{filename}}.log",
    benchmark:
        f"{BENCHMARKS}/fetch_sheet_file/{{subject}}_{{column}}_{{filename}}.tsv"
    wildcard_constraints:
        column="func|confounds",
        filename="[A-Za-z0-9_-][A-Za-z0-9._-]*",
    retries: 0
    conda:
        "../../envs/sparseconn.yaml"
    threads: 1
    resources:
        downloads=1,
        mem_mb=200,
        runtime=60,
    params:
        url=get_sheet_url,
        lock=PATHS.sheet_lock,
    message:
        "sub-{wildcards.subject}: downloading {params.url}"
    script:
        "../../scripts/fetch_sheet_file.py"
