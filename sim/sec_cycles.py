"""Cycle model of the SEC block (:class:`focus.hdl.sec.SemanticConcentrator`).

The block's timing depends only on the configuration, the number of score rows of the job
(heads x text tokens) and whether the job is valid; never on the score values or on k. Counts below
assume a score source that offers a beat every cycle and ``mask``/``status`` sinks that are always
ready; idle and stall cycles add to them one for one. docs/sec.md derives each term.

With ``T = cfg.tokens``, ``P = cfg.sec_passes``, ``B = 2**cfg.sec_digit_bits``, ``R`` rows:

* accumulation: ``R * T`` cycles, one score per cycle;
* selection (valid job): ``P * (T + 1 + B)`` (a histogram pass over the importance buffer plus one
  flush cycle, then a ``B``-cycle scan of the bins, per digit) ``+ T + 2`` (the emit pass: one mask
  beat per token, two cycles of read latency) ``+ 1`` (the status beat);
* an invalid job (bad k, or scores ending mid-row) skips selection: its status follows 1 cycle
  after the last score.

Everything is linear in ``T``; ``B`` and ``P`` are configuration constants.
"""

from __future__ import annotations

from ..config import FocusConfig

__all__ = ["selection_cycles", "job_cycles", "job_interval"]


def selection_cycles(cfg: FocusConfig, valid: bool = True) -> int:
    """Clock edges from the one that takes a job's last score to the one that takes its status
    beat: ``P * (T + 1 + B) + T + 3`` for a valid job, 1 for an invalid one."""
    if not valid:
        return 1
    t, b = cfg.tokens, 1 << cfg.sec_digit_bits
    return cfg.sec_passes * (t + 1 + b) + t + 3


def job_cycles(cfg: FocusConfig, rows: int, valid: bool = True) -> int:
    """Clock edges from the one that takes the job descriptor to the one that takes the status
    beat: ``rows * T`` (the first score is taken one edge after the descriptor, the last ``rows * T``
    edges after it) + :func:`selection_cycles`."""
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"rows={rows!r} is not allowed: at least one (head, text token) row of scores")
    return rows * cfg.tokens + selection_cycles(cfg, valid)


def job_interval(cfg: FocusConfig, rows: int, valid: bool = True) -> int:
    """Clock edges between the descriptor handshakes of back-to-back jobs: :func:`job_cycles` + 1
    (the block takes the next descriptor one edge after a status beat)."""
    return job_cycles(cfg, rows, valid) + 1
