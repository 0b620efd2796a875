"""Focus: a hardware generator for the streaming concentration accelerator of arXiv 2512.14661.

Subpackages, one per top-level folder of the repository:

``focus.hdl``  Amaranth components (processing elements, systolic array, similarity and top-k logic)
``focus.sim``  NumPy golden model, workloads, cycle models, test-vector export
``focus.gen``  elaboration to Verilog (``focus-gen``)
``focus.tb``   cocotb testbenches and the runner that builds them on Verilator or Icarus
``focus.fpga`` board tops and the host link
"""

from .config import ConfigError, FocusConfig

__all__ = ["ConfigError", "FocusConfig"]
__version__ = "0.1.0"
