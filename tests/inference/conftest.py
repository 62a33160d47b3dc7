import pytest

from rrg_desk.models.bundle import build_random_bundle


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A randomly initialised tiny bundle: exercises the plumbing, not the quality."""
    return build_random_bundle(tmp_path_factory.mktemp("bundles") / "tiny", size="tiny", seed=0)
