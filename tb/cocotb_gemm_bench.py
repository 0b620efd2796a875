"""cocotb measurement of GEMM cycle counts for benchmarks/systolic.py.

Parameters (``tb_context()``): ``points``, a list of ``[M, K, N]``, and ``out``, the JSON file to
write. For each point, after a reset: one job with random operands, every stream without idle
cycles or backpressure; the results must equal NumPy exactly. The cycle count is the one defined
in :mod:`focus.tb.cocotb_gemm` (command handshake to last result handshake, inclusive).
"""

from __future__ import annotations

import json

import cocotb

from focus.tb.cocotb_gemm import GemmBench


@cocotb.test(timeout_time=1000, timeout_unit="ms")
async def measure_cycles(dut):
    tb = GemmBench(dut)
    records = []
    for M, K, N in tb.params["points"]:
        await tb.restart()
        await tb.run([tb.job(M, K, N)])
        records.append({"M": M, "K": K, "N": N, "measured_cycles": tb.last_out - tb.first_in + 1})
    with open(tb.params["out"], "w") as f:
        json.dump(records, f)
