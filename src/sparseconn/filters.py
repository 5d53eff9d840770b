"""Butterworth filters and zero-phase filtering, with numpy alone.

The same filter as ``scipy.signal.butter(order, cutoff, btype, output="sos",
fs=1 / t_r)`` applied with ``scipy.signal.sosfiltfilt(sos, x, axis=0)`` (odd
padding of ``3 * ntaps`` samples, steady-state initial conditions scaled by the
first sample of each pass), written here because importing ``scipy.signal`` costs
about 0.7 s: more than a scan's whole extraction once the process is warm, and
paid again by every extraction job of a cluster run.

Design (Butterworth 1930; bilinear transform with pre-warped cutoffs): the analog
prototype's poles ``-exp(i pi m / 2N)``, ``m = -N+1, -N+3, ..., N-1``, moved to the
cutoff (low-pass), inverted (high-pass) or split around the band's centre
(band-pass), then mapped by ``z = (4 + s) / (4 - s)``; the zeros at infinity go to
``z = -1``, those at ``s = 0`` to ``z = 1``. Poles and zeros are paired into
second-order sections as scipy's ``zpk2sos(pairing="nearest")`` does (the pole
closest to the unit circle in the last section, each pole pair with its nearest
zeros; an odd order gets a first-order section, padded with a pole and a zero at
the origin), gain in the first section: the same sections, so the same padding.

Filtering: the zero-phase filter of ``n`` samples is linear, so it is computed
once per filter and length as an ``n x n`` operator (the cascade run on the
identity, sample by sample, with scipy's ``sosfilt`` arithmetic) and applied as a
matrix product; series longer than :data:`_OPERATOR_MAX_SAMPLES` run the cascade
on their own columns instead. Results equal scipy's within rounding
(``tests/unit/test_filters.py``: 1e-12 of the signal's scale).
"""

from __future__ import annotations

import math

import numpy as np

from sparseconn.recent import RecentValues

#: Longest series filtered through a cached ``n x n`` operator (8 MB at most).
_OPERATOR_MAX_SAMPLES = 1024
_OPERATORS_KEPT = 8
_OPERATORS: RecentValues[np.ndarray] = RecentValues(_OPERATORS_KEPT)


def _prototype_poles(order: int) -> np.ndarray:
    """Poles of the analog Butterworth low-pass prototype (cutoff 1 rad/s)."""
    m = np.arange(-order + 1, order, 2, dtype=np.float64)
    return -np.exp(1j * np.pi * m / (2 * order))


def _warped(cutoff: float, sampling_rate: float) -> float:
    """Analog frequency whose bilinear image (at fs = 2) is the digital cutoff."""
    normalized = 2.0 * cutoff / sampling_rate  # of the Nyquist frequency
    return 4.0 * math.tan(math.pi * normalized / 2.0)


def butterworth_zpk(
    order: int, cutoffs: tuple[float, ...], kind: str, sampling_rate: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Digital zeros, poles and gain of a Butterworth filter.

    Parameters
    ----------
    order : int
        Filter order (band-pass filters have twice as many poles).
    cutoffs : tuple of float
        One cutoff in Hz for ``"low"`` and ``"high"``, two for ``"band"``.
    kind : {"low", "high", "band"}
    sampling_rate : float
        Samples per second (``1 / t_r``).
    """
    poles = _prototype_poles(order)
    gain = 1.0
    if kind == "low":
        (cutoff,) = cutoffs
        warped = _warped(cutoff, sampling_rate)
        zeros = np.empty(0)
        poles = warped * poles
        gain = gain * warped**order
    elif kind == "high":
        (cutoff,) = cutoffs
        warped = _warped(cutoff, sampling_rate)
        poles = warped / poles
        zeros = np.zeros(order)
        gain = gain * float(np.real(1.0 / np.prod(-_prototype_poles(order))))
    elif kind == "band":
        low, high = (_warped(cutoff, sampling_rate) for cutoff in cutoffs)
        bandwidth = high - low
        centre = math.sqrt(low * high)
        half = poles * bandwidth / 2
        spread = np.sqrt(half**2 - centre**2)
        poles = np.concatenate((half + spread, half - spread))
        zeros = np.zeros(order)
        gain = gain * bandwidth**order
    else:
        raise ValueError(f"unknown filter kind {kind!r}")
    # bilinear transform at fs = 2
    excess = len(poles) - len(zeros)
    digital_zeros = np.concatenate(((4.0 + zeros) / (4.0 - zeros), -np.ones(excess)))
    digital_poles = (4.0 + poles) / (4.0 - poles)
    gain = gain * float(np.real(np.prod(4.0 - zeros) / np.prod(4.0 - poles)))
    return digital_zeros.real, digital_poles, gain


def _section(zeros: tuple[float, float], poles: tuple[complex, complex]) -> list:
    """Coefficients ``[b0, b1, b2, 1, a1, a2]`` of one section."""
    (z1, z2), (p1, p2) = zeros, poles
    if p1.imag != 0.0:  # a conjugate pair: real coefficients
        a1 = -(p1.real + p1.real)
        a2 = p1.real * p1.real + p1.imag * p1.imag
    else:
        a1 = -p1.real - p2.real
        a2 = p1.real * p2.real
    return [1.0, -z1 - z2, z1 * z2, 1.0, a1, a2]


def sections_of(zeros: np.ndarray, poles: np.ndarray, gain: float) -> np.ndarray:
    """Second-order sections from real zeros and conjugate-paired poles.

    Pairs as scipy's ``zpk2sos(..., pairing="nearest")``: sections are filled from
    the last, each time with the remaining pole closest to the unit circle, its
    conjugate (or, for a real pole, the next real pole closest to the circle) and
    the two remaining zeros nearest to it. ``zeros`` must be real (a Butterworth
    filter's are at 1 and -1) and as many as the poles.
    """
    zeros = [float(z) for z in zeros]
    # real within rounding, as scipy's _cplxreal decides (100 eps of the modulus)
    is_real = np.abs(poles.imag) <= 100 * np.finfo(np.float64).eps * np.abs(poles)
    upper = [complex(p) for p in poles[~is_real] if p.imag > 0]
    real = [complex(p.real, 0.0) for p in poles[is_real]]
    if len(real) % 2 == 1:  # odd order: a first-order section
        real.append(0j)
        zeros.append(0.0)
    remaining = upper + real
    n_sections = len(upper) + len(real) // 2
    sos = np.zeros((n_sections, 6))

    def distance(pole: complex) -> float:
        return abs(1.0 - abs(pole))

    def nearest_zero(pole: complex) -> float:
        index = min(range(len(zeros)), key=lambda i: abs(zeros[i] - pole))
        return zeros.pop(index)

    for index in range(n_sections - 1, -1, -1):
        first = min(range(len(remaining)), key=lambda i: distance(remaining[i]))
        pole = remaining.pop(first)
        if pole.imag != 0.0:
            partner = pole.conjugate()
        else:
            reals = [i for i, p in enumerate(remaining) if p.imag == 0.0]
            if not reals:  # cannot happen: real poles come in pairs here
                raise ValueError("unpaired real pole")
            partner = remaining.pop(min(reals, key=lambda i: distance(remaining[i])))
        pair = (nearest_zero(pole), nearest_zero(pole))
        sos[index] = _section(pair, (pole, partner))
    sos[0, :3] *= gain
    return sos


def butterworth_sections(
    order: int, cutoffs: tuple[float, ...], kind: str, sampling_rate: float
) -> np.ndarray:
    """Second-order sections (``scipy.signal.butter(..., output="sos")``'s)."""
    return sections_of(*butterworth_zpk(order, cutoffs, kind, sampling_rate))


def padding_length(sos: np.ndarray) -> int:
    """Samples of odd extension at each end (scipy's ``sosfiltfilt`` default)."""
    trailing_zeros = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * (2 * len(sos) + 1 - trailing_zeros)


def steady_state(sos: np.ndarray) -> np.ndarray:
    """Initial states, shape (n_sections, 2), of the cascade's unit step response.

    Sections as :func:`sections_of` builds them (``a0 = 1``).
    """
    states = np.empty((len(sos), 2))
    scale = 1.0
    for index, (b0, b1, b2, _, a1, a2) in enumerate(sos):
        # I - A' (A the denominator's companion matrix), and b[1:] - a[1:] b0
        system = np.array([[1.0 + a1, -1.0], [a2, 1.0]])
        states[index] = scale * np.linalg.solve(system, [b1 - a1 * b0, b2 - a2 * b0])
        scale *= (b0 + b1 + b2) / (1.0 + a1 + a2)
    return states


def _cascade(sos: np.ndarray, samples: np.ndarray, states: np.ndarray) -> None:
    """Run the sections over ``samples`` (rows) in place; ``states`` (S, 2, cols)."""
    coefficients = sos.tolist()
    for row in samples:
        current = row
        for (b0, b1, b2, _, a1, a2), state in zip(coefficients, states, strict=True):
            new = b0 * current
            new += state[0]
            first = b1 * current
            first -= a1 * new
            first += state[1]
            second = b2 * current
            second -= a2 * new
            state[0] = first
            state[1] = second
            current = new
        row[...] = current


def _filtfilt_columns(sos: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """Zero-phase filter of each column (odd padding, steady-state start)."""
    if signals.ndim == 1:
        return _filtfilt_columns(sos, signals[:, None])[:, 0]
    n = signals.shape[0]
    pad = padding_length(sos)
    if n <= pad:
        raise ValueError(f"{n} samples are too few to filter: at least {pad + 1}")
    extended = np.concatenate(
        (
            2 * signals[0] - signals[pad:0:-1],
            signals,
            2 * signals[-1] - signals[-2 : -(pad + 2) : -1],
        )
    ).astype(np.float64, copy=False)
    zi = steady_state(sos)[:, :, None]
    _cascade(sos, extended, zi * extended[0])
    backward = extended[::-1]
    _cascade(sos, backward, zi * backward[0])
    return np.ascontiguousarray(extended[pad:-pad])


def _operator(sos: np.ndarray, n: int) -> np.ndarray:
    """The zero-phase filter of ``n`` samples as an ``n x n`` matrix (cached)."""
    key = (sos.tobytes(), sos.shape, n)
    return _OPERATORS.get(key, lambda: _new_operator(sos, n))


def _new_operator(sos: np.ndarray, n: int) -> np.ndarray:
    """The zero-phase filter of ``n`` samples as a read-only ``n x n`` matrix."""
    operator = _filtfilt_columns(sos, np.eye(n))
    operator.setflags(write=False)
    return operator


def filtfilt(sos: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """Zero-phase filter of each column of ``signals`` (samples along axis 0).

    Equal within rounding to ``scipy.signal.sosfiltfilt(sos, signals, axis=0)``.
    """
    signals = np.asarray(signals, dtype=np.float64)
    n = signals.shape[0]
    if n > _OPERATOR_MAX_SAMPLES:
        return _filtfilt_columns(sos, signals)
    return _operator(sos, n) @ signals  # too few samples: raised building it
