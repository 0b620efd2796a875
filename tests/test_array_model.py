"""The cycle model of the systolic array and GEMM sequencer, on its own: closed forms in the
back-to-back regime, the stall regimes, and argument checks. (That the RTL matches it, cycle for
cycle, is checked in tests/test_systolic.py and tests/test_systolic_rtl.py.)"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from focus.sim.array_model import (array_cycles, array_schedule, gemm_cycles, gemm_passes,
                                   ideal_cycles)


@given(rows=st.integers(1, 64), cols=st.integers(1, 64), passes=st.integers(1, 12), extra=st.integers(0, 500))
def test_long_passes_run_back_to_back(rows, cols, passes, extra):
    M = max(rows, rows + cols - 2) + extra
    schedule = array_schedule([M] * passes, rows, cols)
    assert schedule.starts == tuple(rows + t * M for t in range(passes))
    # weights for the first tile, then one vector per cycle, then the pipeline latency
    assert array_cycles([M] * passes, rows, cols) == rows + passes * M + rows + cols + 4


def test_gemm_cycles_closed_form_for_the_benchmark_shapes():
    for R in (8, 32):
        for M in (64, 256, 1024):
            T = 6                                   # K = 2R, N = 3C
            assert gemm_cycles(M, 3 * R, 2 * R, R, R) == T * M + 2 * R + R + 6
            assert ideal_cycles(M, 3 * R, 2 * R, R, R) == T * M


def test_short_passes_wait_for_the_bank_of_the_pass_before_last():
    R, C = 4, 3
    M = R + C - 4                                   # 3 < R + C - 2 = 5
    schedule = array_schedule([M] * 4, R, C)
    for t in range(2, 4):
        assert schedule.commits[t] == schedule.ends[t - 2] + R + C - 1
        assert schedule.starts[t] == schedule.commits[t] > schedule.ends[t - 1] + 1


def test_passes_shorter_than_rows_wait_for_weights():
    R, C = 8, 1
    schedule = array_schedule([2] * 5, R, C)
    assert [b - a for a, b in zip(schedule.starts, schedule.starts[1:])] == [R] * 4


@given(rows=st.integers(1, 16), cols=st.integers(1, 16),
       lengths=st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_schedule_never_beats_one_vector_per_cycle(rows, cols, lengths):
    schedule = array_schedule(lengths, rows, cols)
    for t in range(1, len(lengths)):
        assert schedule.starts[t] > schedule.ends[t - 1]
        assert schedule.commits[t] >= schedule.commits[t - 1] + rows
    assert array_cycles(lengths, rows, cols) >= sum(lengths) + rows + rows + cols + 4


def test_gemm_passes_pad_k_and_n_to_whole_chunks_and_tiles():
    assert gemm_passes(5, 1, 1, 8, 8) == [5]
    assert gemm_passes(5, 9, 17, 8, 8) == [5] * 6
    assert gemm_passes(3, 32, 32, 32, 32) == [3]


@pytest.mark.parametrize("args", [(0, 1, 1, 4, 4), (1, 0, 1, 4, 4), (1, 1, -3, 4, 4)])
def test_gemm_rejects_empty_dimensions(args):
    with pytest.raises(ValueError, match="at least 1"):
        gemm_cycles(*args)


def test_schedule_rejects_empty_passes_and_arrays():
    with pytest.raises(ValueError, match="at least one vector"):
        array_schedule([3, 0], 4, 4)
    with pytest.raises(ValueError, match="at least one row"):
        array_schedule([3], 0, 4)
