"""Every file the workflow reads or writes, by name: the output contract in one place.

Patterns hold Snakemake wildcards in braces (``{subject}``, ``{estimate}``,
``{stem}``...). Results follow the BIDS-derivatives layout of the README's
"Outputs" (xcp_d's names); generated and downloaded inputs live under
``resources_dir``.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from sparseconn.bids import output_name, parse_stem
from sparseconn.fetch import (
    ADHD_PHENOTYPES_MEMBER,
    DEVELOPMENT_CONFOUNDS_NAME,
    DEVELOPMENT_FOLDER,
    DEVELOPMENT_FUNC_NAME,
    DEVELOPMENT_PARTICIPANTS_NAME,
    DEVELOPMENT_REDUCED_CONFOUNDS_NAME,
)

#: The two estimates of the group stage, as named in ``desc-``.
ESTIMATES = ("groupsparse", "graphlasso")
#: The matrices drawn for each estimate.
MATRIX_KINDS = ("covariance", "sparsity", "precision")


#: The wildcard of every per-atlas file name.
ATLAS_WILDCARD = "{atlas}"


def fill(pattern: str, **values: str) -> str:
    """``pattern`` with the wildcards named in ``values`` replaced, the others kept.

    ``fill("sub-{subject}_atlas-{atlas}", subject="01")`` is
    ``"sub-01_atlas-{atlas}"`` (``str.format`` would need every wildcard).
    """
    for key, value in values.items():
        pattern = pattern.replace(f"{{{key}}}", value)
    return pattern


def outputs_to_request(
    jobs: Sequence[tuple[Sequence[str], Sequence[str]]],
) -> list[str]:
    """The outputs rule ``all`` names, of jobs given as (anchors, others) pairs.

    Naming every output costs Snakemake a producer lookup each, and a lookup of
    one of the thousands of outputs of a group job (one file per subject) scans
    that job's outputs: naming them all makes a 1000-subject dry run quadratic.
    So of each job only its ``anchors`` (a few of its outputs) are named always:
    a missing anchor reruns the job, which writes the ``others`` too. The
    ``others`` are named only when every anchor of their job exists, and then
    only the missing ones, so that a deleted output still reruns its job.
    """
    requested = []
    for anchors, others in jobs:
        requested.extend(anchors)
        if all(os.path.exists(anchor) for anchor in anchors):
            requested.extend(path for path in others if not os.path.exists(path))
    return requested


@dataclass(frozen=True)
class Paths:
    """The run's file names, from the config's folders.

    ``atlas`` is the ``atlas-`` entity of every per-atlas name: the
    :data:`ATLAS_WILDCARD` in the rules (one job per atlas, or a list expanded
    over the atlases), or an atlas's name.
    """

    results: str
    resources: str
    atlas: str = ATLAS_WILDCARD

    @classmethod
    def from_config(cls, config: dict, atlas: str = ATLAS_WILDCARD) -> Paths:
        """``results_dir`` and ``resources_dir`` of ``config``, normalised."""
        return cls(
            os.path.normpath(config["results_dir"]),
            os.path.normpath(config["resources_dir"]),
            atlas,
        )

    # ------------------------------------------------------------ run records
    @property
    def logs(self) -> str:
        """Each job's log, kept with the results (two results_dir keep theirs)."""
        return f"{self.results}/logs"

    @property
    def benchmarks(self) -> str:
        """Snakemake's benchmark of each job."""
        return f"{self.results}/benchmarks"

    # --------------------------------------------------------- results layout
    @property
    def group(self) -> str:
        return f"{self.results}/group"

    @property
    def figures(self) -> str:
        return f"{self.results}/figures"

    @property
    def dataset_description(self) -> str:
        return f"{self.results}/dataset_description.json"

    @property
    def bidsignore(self) -> str:
        return f"{self.results}/.bidsignore"

    def subject_file(self, suffix: str) -> str:
        """``{results}/sub-{subject}/func/sub-{subject}_<suffix>`` (a pattern)."""
        return f"{self.results}/sub-{{subject}}/func/sub-{{subject}}_{suffix}"

    @property
    def high_variance_confounds(self) -> str:
        return self.subject_file("desc-highvariance_confounds.tsv")

    def subject_timeseries(self, ext: str = "tsv") -> str:
        return self.subject_file(f"atlas-{self.atlas}_timeseries.{ext}")

    @property
    def subject_regions(self) -> str:
        """A subject's region table: coverage, and whether the group can use each."""
        return self.subject_file(f"atlas-{self.atlas}_desc-coverage_regions.tsv")

    def relmat(self, stat: str, desc: str, ext: str = "tsv") -> str:
        """A subject's relmat TSV (xcp_d layout) or its JSON (a pattern)."""
        return self.subject_file(
            f"atlas-{self.atlas}_stat-{stat}_desc-{desc}_relmat.{ext}"
        )

    def group_relmat_sidecar(self, stat: str, desc: str) -> str:
        """The sidecar every relmat of ``stat`` and ``desc`` inherits (BIDS).

        At the top of the results, named by the entities the relmats share, so
        that it applies to each of them (``sub-01/func/sub-01_atlas-A_stat-
        precision_desc-groupsparse_relmat.tsv`` inherits
        ``atlas-A_stat-precision_desc-groupsparse_relmat.json``).
        """
        return f"{self.results}/atlas-{self.atlas}_stat-{stat}_desc-{desc}_relmat.json"

    def scan_file(self, name: str, suffix: str, **entities: str) -> str:
        """A file of a run (or group unit) named by its BIDS entities.

        ``sub-01_ses-1_task-rest_run-1_space-X_res-2``, ``timeseries.tsv``, atlas
        A -> ``{results}/sub-01/ses-1/func/sub-01_ses-1_task-rest_run-1_space-X_
        atlas-A_res-2_timeseries.tsv`` (entities in BIDS order).
        """
        found = dict(parse_stem(name))
        parts = [f"{key}-{found[key]}" for key in ("sub", "ses") if key in found]
        return posixpath.join(
            self.results, *parts, "func", output_name(name, suffix, **entities)
        )

    def scan_timeseries(self, name: str, ext: str = "tsv") -> str:
        return self.scan_file(name, f"timeseries.{ext}", atlas=self.atlas)

    def scan_regions(self, name: str) -> str:
        """A run's region table (see :attr:`subject_regions`)."""
        return self.scan_file(name, "regions.tsv", atlas=self.atlas, desc="coverage")

    def timeseries_stem(self, name: str) -> str:
        """A run's time-series name without its suffix and atlas: the rule's key.

        The entities before ``atlas`` and those after it, joined by ``|``: the
        wildcards ``{stem}`` and ``{post}`` of :meth:`scan_timeseries_pattern`.
        """
        marker = "ATLASMARK"
        before, after = output_name(name, "", atlas=marker).split(f"_atlas-{marker}")
        return f"{before}|{after}"

    def scan_timeseries_pattern(self, atlases: list[str]) -> dict[str, list[str]]:
        """Outputs of rule fmriprep_timeseries: each atlas's TSV, JSON, regions.

        ``{folder}``, ``{stem}`` (the entities before ``atlas``) and ``{post}``
        (those after it: ``_res-2``, or empty) are wildcards.
        """
        folder = f"{self.results}/{{folder}}/func"
        outputs = {
            ext: [
                f"{folder}/{{stem}}_atlas-{atlas}{{post}}_timeseries.{ext}"
                for atlas in atlases
            ]
            for ext in ("tsv", "json")
        }
        outputs["regions"] = [
            f"{folder}/{{stem}}_atlas-{atlas}{{post}}_desc-coverage_regions.tsv"
            for atlas in atlases
        ]
        return outputs

    def group_connectome(self, estimate: str) -> str:
        """The group ``.npz`` of an estimate (``{estimate}`` for a pattern)."""
        return f"{self.group}/atlas-{self.atlas}_desc-{estimate}_connectome.npz"

    @property
    def stability(self) -> str:
        """Rule stability_selection's ``.npz``: path, probabilities, stable set."""
        return f"{self.group}/atlas-{self.atlas}_desc-stability_selection.npz"

    @property
    def heldout_stability(self) -> str:
        """One fold's held-out table of the stable set and the EBIC alpha."""
        return (
            f"{self.group}/heldout/atlas-{self.atlas}_fold-{{fold}}"
            "_desc-stability_loglikelihood.tsv"
        )

    @property
    def group_regions(self) -> str:
        """The regions of the group stage: kept, or dropped and why."""
        return f"{self.group}/atlas-{self.atlas}_desc-coverage_regions.tsv"

    @property
    def scans_qc(self) -> str:
        return f"{self.group}/atlas-{self.atlas}_desc-scans_qc.tsv"

    def qcfc(self, ext: str = "tsv") -> str:
        """The QC-FC check: one row per edge (``tsv``), its summary (``json``)."""
        return f"{self.group}/atlas-{self.atlas}_desc-qcfc_edges.{ext}"

    @property
    def group_qc_page(self) -> str:
        """The report's group QC page: the scans' QC table, the QC-FC summary."""
        return f"{self.group}/atlas-{self.atlas}_desc-groupqc_report.html"

    def participants(self, ext: str = "tsv") -> str:
        """BIDS ``participants.tsv`` (who entered the group stage), its ``.json``."""
        return f"{self.results}/participants.{ext}"

    @property
    def methods(self) -> str:
        """The methods paragraph of the run (reStructuredText, in the report)."""
        return f"{self.results}/methods.rst"

    @property
    def heldout_loglikelihood(self) -> str:
        return f"{self.group}/atlas-{self.atlas}_desc-heldout_loglikelihood.tsv"

    @property
    def heldout_group_sparse(self) -> str:
        """One fold's group-sparse held-out table (a ``{fold}`` pattern)."""
        return (
            f"{self.group}/heldout/atlas-{self.atlas}_fold-{{fold}}"
            "_desc-groupsparse_loglikelihood.tsv"
        )

    def heldout_batch(self, ext: str = "tsv") -> str:
        """Per-subject estimators of a batch of subjects (a ``{batch}`` pattern).

        ``tsv``: their held-out log-likelihoods; ``npz``: their precisions on the
        whole series (ground-truth recovery).
        """
        suffix = "loglikelihood.tsv" if ext == "tsv" else "precisions.npz"
        return (
            f"{self.group}/heldout/atlas-{self.atlas}_batch-{{batch}}"
            f"_desc-single_{suffix}"
        )

    def heldout_batch_outputs(self, with_precisions: bool) -> dict[str, str]:
        """Outputs of rule heldout_subjects: the table, and the precisions if asked."""
        outputs = {"tsv": self.heldout_batch()}
        if with_precisions:
            outputs["npz"] = self.heldout_batch("npz")
        return outputs

    @property
    def recovery_scores(self) -> str:
        return f"{self.group}/atlas-{self.atlas}_desc-recovery_scores.tsv"

    # ---------------------------------------------------------------- figures
    def plotted_figure(self, label: str, suffix: str) -> str:
        """A figure of the plotted unit ``label`` (``sub-01`` or a unit's name)."""
        return f"{self.figures}/{label}_atlas-{self.atlas}_{suffix}"

    def group_figure(self, suffix: str) -> str:
        return f"{self.figures}/atlas-{self.atlas}_{suffix}"

    @property
    def qc_figure(self) -> str:
        return f"{self.figures}/sub-{{subject}}_atlas-{self.atlas}_qc"

    # ---------------------------------------------- generated inputs (synthetic)
    @property
    def synthetic(self) -> str:
        return f"{self.resources}/synthetic"

    @property
    def synthetic_atlas(self) -> dict[str, str]:
        return {
            "maps": f"{self.synthetic}/atlas_maps.nii.gz",
            "labels": f"{self.synthetic}/atlas_labels.csv",
            "truth": f"{self.synthetic}/atlas_truth.npz",
            "dseg": f"{self.synthetic}/atlas_dseg.nii.gz",
            "dseg_table": f"{self.synthetic}/atlas_dseg.tsv",
        }

    @property
    def synthetic_subject(self) -> dict[str, str]:
        return {
            "func": f"{self.synthetic}/sub-{{subject}}_bold.nii.gz",
            "confounds": (
                f"{self.synthetic}/sub-{{subject}}_desc-confounds_timeseries.tsv"
            ),
            "truth": f"{self.synthetic}/sub-{{subject}}_truth.npz",
        }

    # ------------------------------------------------------- downloads (adhd)
    @property
    def adhd(self) -> str:
        return f"{self.resources}/adhd"

    @property
    def adhd_atlas(self) -> dict[str, str]:
        """The MSDL atlas (also the default atlas of dataset fmriprep)."""
        return {
            "maps": f"{self.adhd}/msdl/msdl_rois.nii",
            "labels": f"{self.adhd}/msdl/msdl_rois_labels.csv",
        }

    @property
    def adhd_subject(self) -> dict[str, str]:
        """A subject's two files, named as in its archive."""
        return {
            "func": (
                f"{self.adhd}/{{subject}}/{{subject}}_rest_tshift_RPI_voreg_mni.nii.gz"
            ),
            "confounds": f"{self.adhd}/{{subject}}/{{subject}}_regressors.csv",
        }

    @property
    def adhd_phenotypes(self) -> str:
        return f"{self.adhd}/{ADHD_PHENOTYPES_MEMBER}"

    def adhd_download(self, name: str) -> str:
        """Where an archive is downloaded (resumable ``.part``; deleted once used)."""
        return f"{self.adhd}/downloads/{name}"

    @property
    def adhd_lock(self) -> str:
        """SHA-256 of every validated archive."""
        return f"{self.adhd}/checksums.lock.json"

    # ------------------------------------------------ downloads (development)
    @property
    def development(self) -> str:
        """The dataset's folder: nilearn's ``data_dir`` for the same files."""
        return f"{self.resources}/development"

    @property
    def development_data(self) -> str:
        """Where the files are, in nilearn's layout."""
        return f"{self.development}/{DEVELOPMENT_FOLDER}"

    @property
    def development_participants(self) -> str:
        return f"{self.development_data}/{DEVELOPMENT_PARTICIPANTS_NAME}"

    @property
    def development_subject(self) -> dict[str, str]:
        """A subject's image, confounds and reduced confounds, named as nilearn's."""
        names = {
            "func": DEVELOPMENT_FUNC_NAME,
            "confounds": DEVELOPMENT_CONFOUNDS_NAME,
            "reduced_confounds": DEVELOPMENT_REDUCED_CONFOUNDS_NAME,
        }
        return {key: f"{self.development_data}/{name}" for key, name in names.items()}

    @property
    def development_lock(self) -> str:
        """SHA-256 of every validated download."""
        return f"{self.development}/checksums.lock.json"

    # -------------------------------------------- downloads (sheet URL cells)
    @property
    def sheet_downloads(self) -> str:
        return f"{self.resources}/sheet"

    @property
    def sheet_lock(self) -> str:
        return f"{self.sheet_downloads}/checksums.lock.json"
