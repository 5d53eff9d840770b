"""The numpy Butterworth filter against scipy.signal (the oracle, never run by jobs)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

from sparseconn import filters
from sparseconn.signals import BUTTERWORTH_ORDER, butterworth_sos, clean

#: (t_r, high_pass, low_pass): the default, other TRs and bands, odd and even.
SETTINGS = [
    (2.5, 0.01, None),
    (2.0, None, 0.1),
    (2.0, 0.01, 0.1),
    (0.72, 0.008, 0.09),
    (3.0, 0.02, None),
    (1.0, 0.1, 0.3),
    (2.0, 0.2, None),
    (0.5, 0.009, 0.95),
]


def _scipy_sos(t_r, high_pass, low_pass):
    fs = 1 / t_r
    if high_pass and low_pass:
        return signal.butter(
            BUTTERWORTH_ORDER, [high_pass, low_pass], "band", output="sos", fs=fs
        )
    if high_pass:
        return signal.butter(BUTTERWORTH_ORDER, high_pass, "high", output="sos", fs=fs)
    return signal.butter(BUTTERWORTH_ORDER, low_pass, "low", output="sos", fs=fs)


@pytest.mark.parametrize(("t_r", "high_pass", "low_pass"), SETTINGS)
def test_sections_equal_scipy_butter(t_r, high_pass, low_pass):
    ours = butterworth_sos(t_r, high_pass, low_pass)
    reference = _scipy_sos(t_r, high_pass, low_pass)
    assert ours.shape == reference.shape
    # same sections in the same order (so the same padding), equal within rounding
    np.testing.assert_allclose(ours, reference, rtol=1e-13, atol=1e-15)
    assert filters.padding_length(ours) == filters.padding_length(reference)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("kind", ["low", "high", "band"])
def test_sections_of_other_orders_equal_scipy(order, kind):
    cutoffs = (0.02, 0.15) if kind == "band" else (0.07,)
    ours = filters.butterworth_sections(order, cutoffs, kind, 0.5)
    reference = signal.butter(
        order, cutoffs if kind == "band" else cutoffs[0], kind, output="sos", fs=0.5
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("t_r", "high_pass", "low_pass"), SETTINGS)
@pytest.mark.parametrize("n_samples", [40, 176, 1300])
def test_filtfilt_equals_scipy_sosfiltfilt(t_r, high_pass, low_pass, n_samples):
    sos = butterworth_sos(t_r, high_pass, low_pass)
    if n_samples <= filters.padding_length(sos):
        pytest.skip("shorter than the padding")
    rng = np.random.default_rng(n_samples)
    data = rng.standard_normal((n_samples, 7)).cumsum(axis=0) + 50.0
    reference = signal.sosfiltfilt(sos, data, axis=0)
    scale = np.abs(data).max()
    np.testing.assert_allclose(
        filters.filtfilt(sos, data), reference, atol=1e-12 * scale
    )
    # the cascade itself repeats scipy's arithmetic: bit for bit
    np.testing.assert_array_equal(filters._filtfilt_columns(sos, data), reference)
    np.testing.assert_array_equal(
        filters._filtfilt_columns(sos, data[:, 0]), reference[:, 0]
    )


def test_filtfilt_rejects_series_no_longer_than_the_padding():
    sos = butterworth_sos(2.5, 0.01, None)
    pad = filters.padding_length(sos)
    with pytest.raises(ValueError, match="too few"):
        filters.filtfilt(sos, np.ones((pad, 2)))
    assert filters.filtfilt(sos, np.ones((pad + 1, 2))).shape == (pad + 1, 2)


def test_operator_cache_is_bounded_and_reused():
    sos = butterworth_sos(2.0, 0.01, None)
    first = filters._operator(sos, 100)
    assert filters._operator(sos, 100) is first
    for n in range(101, 101 + filters._OPERATORS_KEPT):
        filters._operator(sos, n)
    assert len(filters._OPERATORS) <= filters._OPERATORS_KEPT
    assert filters._operator(sos, 100) is not first
    np.testing.assert_array_equal(filters._operator(sos, 100), first)


def test_cleaning_does_not_import_scipy_signal():
    code = (
        "import sys, numpy as np\n"
        "from sparseconn.signals import clean\n"
        "x = np.random.default_rng(0).standard_normal((120, 4))\n"
        "clean(x, x[:, :2] ** 2, t_r=2.0, high_pass=0.01, low_pass=0.1)\n"
        "print('scipy.signal' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_clean_filters_as_scipy_would():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((150, 5)).cumsum(axis=0)
    sos = _scipy_sos(2.0, 0.01, None)
    ours = clean(
        data, None, t_r=2.0, high_pass=0.01, detrend_signals=False, standardize=None
    )
    np.testing.assert_allclose(ours, signal.sosfiltfilt(sos, data, axis=0), atol=1e-11)
