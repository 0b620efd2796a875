"""Cycle model of the SEC block (:class:`focus.hdl.sec.SemanticConcentrator`).

The block's timing depends only on the configuration, the number of score rows of the job
(heads x text tokens) and whether the job is valid; never on the score values or on k. Counts below
assume a score source that offers a beat every cycle and ``mask``/``status`` sinks that are always
ready; idle and stall cycles add to them one for one. docs/sec.md derives each term.

With ``N = cfg.sec_words = ceil(cfg.tokens / cfg.sec_lanes)`` words of ``sec_lanes`` tokens,
``P = cfg.sec_passes``, ``B = 2**cfg.sec_digit_bits``, ``R`` rows:

* accumulation: ``R * N`` cycles, one beat of ``sec_lanes`` scores per cycle;
* selection (valid job): ``P * (N + 2 + B) + 1`` (per digit a histogram pass over the importance
  buffer, a word per cycle, one cycle to register the last word's candidates and digits, one to
  count them and one to add them, then a ``B``-cycle
  scan of the bins; every pass but the first reads its first word in the previous scan's last
  cycle) ``+ N + 2`` (the emit pass: one mask beat per word behind two pipeline stages, compare and
  mask register; its first word is also read in the last scan cycle) ``+ 1`` (the status beat);
* an invalid job (bad k, or scores ending mid-row) skips selection: its status follows 1 cycle
  after the last score.

Everything is linear in ``N``; ``B`` and ``P`` are configuration constants.
"""

from __future__ import annotations

from ..config import FocusConfig

__all__ = ["selection_cycles", "job_cycles", "job_interval"]


def selection_cycles(cfg: FocusConfig, valid: bool = True) -> int:
    """Clock edges from the one that takes a job's last score beat to the one that takes its status
    beat: ``P * (N + 2 + B) + N + 4`` for a valid job, 1 for an invalid one."""
    if not valid:
        return 1
    n, b = cfg.sec_words, 1 << cfg.sec_digit_bits
    return cfg.sec_passes * (n + 2 + b) + n + 4


def job_cycles(cfg: FocusConfig, rows: int, valid: bool = True) -> int:
    """Clock edges from the one that takes the job descriptor to the one that takes the status
    beat: ``rows * N`` (the first score beat is taken one edge after the descriptor, the last
    ``rows * N`` edges after it) + :func:`selection_cycles`."""
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"rows={rows!r} is not allowed: at least one (head, text token) row of scores")
    return rows * cfg.sec_words + selection_cycles(cfg, valid)


def job_interval(cfg: FocusConfig, rows: int, valid: bool = True) -> int:
    """Clock edges between the descriptor handshakes of back-to-back jobs: :func:`job_cycles` + 1
    (the block takes the next descriptor one edge after a status beat)."""
    return job_cycles(cfg, rows, valid) + 1
