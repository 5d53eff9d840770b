"""sparseconn: resting-state fMRI of many subjects to group-sparse connectomes.

The package holds all numerical and I/O code of the workflow; it never imports
Snakemake, so every function here can be used and tested on its own.
"""

__version__ = "0.1.0"
