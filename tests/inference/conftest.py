import shutil

import pytest

from rrg_desk.imaging import load_studies
from rrg_desk.models.bundle import build_random_bundle
from rrg_desk.paths import samples_dir


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A randomly initialised tiny bundle: exercises the plumbing, not the quality."""
    return build_random_bundle(tmp_path_factory.mktemp("bundles") / "tiny", size="tiny", seed=0)


@pytest.fixture(scope="module")
def study():
    """The two-image sample study (frontal and lateral)."""
    studies, errors = load_studies([samples_dir() / "study1"])
    assert not errors
    return studies[0]


def tampered_copy(bundle, folder, weights_file: str):
    """A copy of `bundle` in `folder` whose `weights_file` has its last byte flipped (its sha256 no
    longer matches the card)."""
    shutil.copytree(bundle, folder)
    weights = folder / weights_file
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    return folder
