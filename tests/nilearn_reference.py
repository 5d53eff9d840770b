"""Exact references built from nilearn where nilearn 0.13.1 is wrong (tests only).

nilearn is imported inside the functions: it is a test dependency, and modules
that only import this one should not need it.
"""

from __future__ import annotations

import numpy as np


def clean_censored_exactly(
    signals: np.ndarray,
    confounds: np.ndarray | None,
    sample_mask: np.ndarray,
    *,
    t_r: float,
    **options,
) -> np.ndarray:
    """nilearn's ``signal.clean`` with censoring, its interpolation corrected.

    nilearn 0.13.1 interpolates the rows ``~sample_mask`` of an integer index array
    (the mirror image of the kept volumes). Here nilearn's own interpolation step
    (``signal._interpolate_volumes``: cubic spline of the kept volumes over time)
    gets a boolean mask, on which ``~`` selects the censored volumes, over the
    volumes from the first to the last kept one; the censored volumes outside them
    are left out, as nilearn does with its default ``extrapolate=False``. Then
    nilearn's ``clean`` runs on that series with the kept volumes as its sample
    mask: they include its first and last volume, so its own interpolation only
    writes values of the same spline again and returns exactly the kept rows.

    Parameters
    ----------
    signals : ndarray, shape (n_volumes, n_signals)
    confounds : ndarray, shape (n_volumes, n_confounds), or None
    sample_mask : ndarray of int
        Kept volumes, increasing.
    t_r : float
    **options
        Passed to ``nilearn.signal.clean`` (``detrend``, ``high_pass``, ...).

    Returns
    -------
    ndarray, shape (n_kept, n_signals)
    """
    from nilearn import signal

    kept = np.asarray(sample_mask, dtype=np.int64)
    span = np.arange(kept[0], kept[-1] + 1)
    is_kept = np.isin(span, kept)

    def interpolated(series: np.ndarray) -> np.ndarray:
        values = np.array(series[span], dtype=np.float64)
        return signal._interpolate_volumes(values, is_kept, t_r, False)

    return signal.clean(
        interpolated(signals),
        confounds=None if confounds is None else interpolated(confounds),
        sample_mask=kept - kept[0],
        t_r=t_r,
        **options,
    )
