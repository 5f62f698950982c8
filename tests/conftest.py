"""Fixtures shared by several test modules."""
import pytest

import hardware_profiles


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty synthesis cache for this test (``TOSIM_CACHE_DIR``); the folder's path."""
    path = tmp_path / "cache"
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(path))
    return path


@pytest.fixture
def fixed_costs(monkeypatch):
    """Scoring prices counts with :func:`tests.fakes.fake_costs` instead of real cost tables."""
    import tosim._costs
    from tests.fakes import fake_costs
    monkeypatch.setattr(tosim._costs, "costs_array", fake_costs)
    return fake_costs


@pytest.fixture(scope="session")
def li2022():
    return hardware_profiles.load("li2022")


@pytest.fixture(scope="session")
def generic():
    return hardware_profiles.load("cmos-generic")


@pytest.fixture(scope="session")
def profile(generic):
    """The default profile (cmos-generic), for tests that count with any profile."""
    return generic
