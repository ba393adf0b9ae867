"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

from notewise.synth.timbres import build_timbre_library


@pytest.fixture(scope="session")
def lib():
    """The default timbre library (what the workflow builds), built once per test run."""
    return build_timbre_library()
