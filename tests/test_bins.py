"""Bin mapping: centres, fractional bins, Numba and NumPy forms agree."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notewise.synth.bin_kernels import bin_to_freq_scalar, freq_to_bin_scalar
from notewise.synth.bins import Bins

SPEC = Bins()


def test_centres_match_the_spec_formula():
    i = np.arange(2048)
    expected = 20.0 * (5000.0 / 20.0) ** (i / 2047)
    np.testing.assert_allclose(SPEC.centres, expected, rtol=1e-14)
    assert SPEC.centres[0] == pytest.approx(20.0, rel=1e-15)
    assert SPEC.centres[-1] == pytest.approx(5000.0, rel=1e-14)


def test_bins_are_about_4_67_cents_apart():
    cents = 1200 * np.log2(SPEC.centres[1:] / SPEC.centres[:-1])
    np.testing.assert_allclose(cents, 1200 * np.log2(250) / 2047, rtol=1e-9)
    assert 4.66 < cents[0] < 4.68


def test_centres_map_to_integer_bins():
    np.testing.assert_allclose(SPEC.freq_to_bin(SPEC.centres), np.arange(2048), atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-50.0, max_value=2100.0))
def test_freq_to_bin_inverts_bin_to_freq(bin_index):
    assert SPEC.freq_to_bin(SPEC.bin_to_freq(bin_index)) == pytest.approx(bin_index, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=5.0, max_value=20000.0))
def test_numba_forms_equal_numpy_forms(freq):
    fractional = freq_to_bin_scalar(freq, 20.0, 5000.0, 2048)
    assert fractional == pytest.approx(float(SPEC.freq_to_bin(freq)), abs=1e-9)
    assert bin_to_freq_scalar(fractional, 20.0, 5000.0, 2048) == pytest.approx(freq, rel=1e-12)


def test_freq_to_bin_is_vectorised():
    freqs = np.array([[20.0, 5000.0], [100.0, 1000.0]])
    bins = SPEC.freq_to_bin(freqs)
    assert bins.shape == (2, 2)
    assert bins[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert bins[0, 1] == pytest.approx(2047.0, abs=1e-9)


def test_contains_is_the_labelled_range():
    assert SPEC.contains([20.0, 5000.0, 440.0]).all()
    assert not SPEC.contains([19.9, 5001.0]).any()


def test_from_dict_and_validation():
    assert Bins.from_dict({"n_bins": 64, "f_min": 50, "f_max": 800}) == Bins(64, 50.0, 800.0)
    with pytest.raises(ValueError, match="n_bins"):
        Bins(1)
    with pytest.raises(ValueError, match="f_min"):
        Bins(16, 500.0, 100.0)
