"""cocotb test of :class:`focus.hdl.sec.SemanticConcentrator` on the real workload: text-to-image
attention of all-MiniLM-L6-v2 (``focus.sim.minilm.attention_scores``) over video tokens.

Run from pytest by tests/test_sec_rtl.py, which computes the scores once and passes ``workload``: an
.npz with ``scores_<i>`` (heads, text tokens, cfg.tokens), ``k`` and ``names`` per job.
"""

from __future__ import annotations

import cocotb
import numpy as np

from focus.tb.cocotb_sec import SecBench
from focus.tb.sec_jobs import OK, expect
from focus.tb.streams import reset_dut


@cocotb.test(timeout_time=2, timeout_unit="sec")
async def real_attention_masks_equal_golden_top_k(dut):
    """The scheduled keep counts on real attention, with random idle and stall on every stream."""
    tb = SecBench(dut, idle=0.1, stall=0.3)
    data = np.load(tb.params["workload"])
    cases = [expect(tb.cfg, str(name), data[f"scores_{i}"], int(k))
             for i, (name, k) in enumerate(zip(data["names"], data["k"]))]
    assert cases and all(c.status == OK for c in cases)
    await reset_dut(dut)
    await tb.run(cases)
