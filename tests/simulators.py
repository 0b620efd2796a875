"""pytest parameters for "every simulator we have", shared by the RTL tests (test_*_rtl.py).

Verilator always; Icarus when installed, otherwise skipped with the reason. (focus.tb.runner itself
raises SimulatorUnavailable for a missing simulator, which tests/conftest.py turns into a skip.)
"""

import pytest

from focus.tb.toolchain import ICARUS_MISSING, icarus_available

SIMULATORS = [
    pytest.param("verilator", id="verilator"),
    pytest.param("icarus", id="icarus", marks=pytest.mark.skipif(not icarus_available(), reason=ICARUS_MISSING)),
]
