"""The timbre library: deterministic, normalised, varied, saved byte-identically."""
import hashlib

import numpy as np
import pytest

from notewise.synth.timbres import (TimbreLibrary, build_timbre_library, family_of,
                                   plot_timbres)


@pytest.fixture(scope="module")
def library():
    return build_timbre_library(count=100, max_partials=48, seed=7)


def families(lib):
    return [name.rsplit("_", 1)[0] if name != "sine" else "sine" for name in lib.names]


def test_shapes_and_dtypes(library):
    assert len(library) == 100
    assert library.amplitudes.shape == (100, 48) and library.amplitudes.dtype == np.float32
    assert library.inharmonicity.shape == (100,) and library.inharmonicity.dtype == np.float32
    assert library.adsr.shape == (100, 4) and library.adsr.dtype == np.float32
    assert len(set(library.names)) == 100


def test_timbre_zero_is_the_pure_sine(library):
    assert library.names[0] == "sine"
    assert library.amplitudes[0, 0] == 1.0
    assert not library.amplitudes[0, 1:].any()
    assert library.inharmonicity[0] == 0.0
    attack, decay, sustain, release = library.adsr[0]
    assert attack <= 0.005 and sustain == 1.0


def test_amplitudes_are_normalised_and_non_negative(library):
    np.testing.assert_allclose((library.amplitudes.astype(np.float64) ** 2).sum(1), 1.0,
                               rtol=1e-6)
    assert (library.amplitudes >= 0).all()


def test_adsr_values_are_sane(library):
    attack, decay, sustain, release = library.adsr.T
    assert (attack >= 0.001).all() and (decay >= 0).all() and (release > 0).all()
    assert ((sustain >= 0) & (sustain <= 1)).all()


def test_variety(library):
    names = families(library)
    first = library.amplitudes[:, 0]
    assert (first == 0).sum() >= 3, "timbres with a missing fundamental"
    weak = (first > 0) & (first < 0.5 * library.amplitudes[:, 1:].max(1))
    assert weak.sum() >= 3, "timbres with a weak fundamental"
    assert (library.inharmonicity > 0).sum() >= 5
    assert (library.inharmonicity > 3e-3).sum() >= 2, "bell-like stretched partials"
    assert (library.adsr[:, 2] == 0).sum() >= 5, "plucked: no sustain"
    assert (library.adsr[:, 0] >= 0.08).sum() >= 5, "pads: slow attack"
    odd_only = library.amplitudes[:, 1::2].sum(1) < 0.3 * library.amplitudes[:, 0::2].sum(1)
    assert odd_only.sum() >= 5, "square/clarinet-like"
    k = np.arange(1, 49)
    centroid = (library.amplitudes**2 @ k) / (library.amplitudes**2).sum(1)
    assert centroid[1:].min() < 2.0 and centroid.max() > 10.0, "dark and bright"
    for family in ("saw", "square", "triangle", "dark", "bright", "formant", "plucked", "pad",
                   "piano", "bell", "missing_fundamental", "weak_fundamental"):
        assert family in names


def test_deterministic(library):
    again = build_timbre_library(count=100, max_partials=48, seed=7)
    assert np.array_equal(library.amplitudes, again.amplitudes)
    assert np.array_equal(library.adsr, again.adsr)
    other = build_timbre_library(count=100, max_partials=48, seed=8)
    assert not np.array_equal(library.amplitudes, other.amplitudes)


def test_other_sizes():
    tiny = build_timbre_library(count=1, max_partials=1)
    assert tiny.amplitudes.shape == (1, 1) and tiny.amplitudes[0, 0] == 1.0
    small = build_timbre_library(count=7, max_partials=3)
    np.testing.assert_allclose((small.amplitudes.astype(float) ** 2).sum(1), 1.0, rtol=1e-6)
    assert family_of(0, 7) == "sine"
    with pytest.raises(ValueError):
        build_timbre_library(count=0)


def test_save_load_roundtrip_is_byte_deterministic(library, tmp_path):
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    library.save(first)
    library.save(second)
    assert hashlib.sha256(first.read_bytes()).digest() == \
        hashlib.sha256(second.read_bytes()).digest()
    loaded = TimbreLibrary.load(first)
    assert np.array_equal(loaded.amplitudes, library.amplitudes)
    assert np.array_equal(loaded.inharmonicity, library.inharmonicity)
    assert np.array_equal(loaded.adsr, library.adsr)
    assert loaded.names == library.names
    assert not list(tmp_path.glob("*.tmp"))


def test_plot_writes_a_png(library, tmp_path):
    path = tmp_path / "timbres.png"
    plot_timbres(library, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
