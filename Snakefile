# sparseconn's workflow is workflow/Snakefile (the Snakemake catalog's layout).
# This file lets `snakemake` run from the repository's root, as before, by using
# it as a module, the way a deploying folder does (snakedeploy deploy-workflow):
# its rule `all` stays the default target (that of an included file would not).


configfile: "config/config.yaml"


module sparseconn:
    snakefile:
        "workflow/Snakefile"
    config:
        config


use rule * from sparseconn
