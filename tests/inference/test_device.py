"""Device choice: an unusable setting is a UserFacingError worded for the settings dialog."""
import pytest

from rrg_desk.errors import UserFacingError
from rrg_desk.inference.device import DeviceUnavailableError, choose_device


def test_an_unknown_device_is_refused_in_words_the_user_can_act_on():
    with pytest.raises(DeviceUnavailableError) as caught:
        choose_device("tpu")
    assert isinstance(caught.value, UserFacingError) and isinstance(caught.value, RuntimeError)
    assert caught.value.user_message == str(caught.value) == "Unknown device 'tpu'; choose one of auto, cpu, cuda."


def test_cpu_is_always_available():
    assert choose_device("CPU").type == "cpu"
