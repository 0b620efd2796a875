"""focus.gen.timing: the device flag, and (slow tier) a real out-of-context place and route of the
small ``mac`` block with its report parsed and cached."""

import pytest

from focus import FocusConfig
from focus.gen.timing import _device_flag, fmax


def test_device_flags_follow_nextpnr_ecp5():
    assert _device_flag("LFE5U-85F") == "--85k"
    assert _device_flag("LFE5U-25F") == "--25k"
    assert _device_flag("LFE5UM5G-85F") == "--um5g-85k"


@pytest.mark.slow
def test_fmax_of_the_mac_block_is_reported_and_cached():
    first = fmax(FocusConfig(), "mac")
    assert first["fmax_mhz"] > 50 and first["target_mhz"] == 100
    assert first["critical_path"]["steps"]
    assert fmax(FocusConfig(), "mac") == first          # from the cache
