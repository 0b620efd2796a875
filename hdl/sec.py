"""Semantic concentration (SEC): token importance from attention scores and exact top-k selection.

The integer contract is docs/semantics.md, section SEC (golden model: ``focus.sim.sec``); the
architecture, stream contracts and cycle formula are in docs/sec.md; the cycle model is
``focus.sim.sec_cycles``.
"""

from amaranth.hdl import Array, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig

__all__ = ["SecJob", "SecScore", "SecMask", "SecStatus", "SecDone", "SemanticConcentrator"]


def SecJob(cfg: FocusConfig) -> data.StructLayout:
    """Payload of a job descriptor: ``k``, the number of image tokens to keep.

    ``k`` is unsigned, ``cfg.tokens.bit_length() + 1`` bits: every valid k (1 .. cfg.tokens) and
    some invalid ones above the token count fit, so the error path can be exercised.
    """
    return data.StructLayout({"k": unsigned(cfg.tokens.bit_length() + 1)})


def SecScore(cfg: FocusConfig) -> data.StructLayout:
    """Payload of one score beat: ``score`` unsigned ``cfg.score_width``; ``last`` ends the job."""
    return data.StructLayout({"score": unsigned(cfg.score_width), "last": 1})


def SecMask(cfg: FocusConfig) -> data.StructLayout:
    """Payload of one mask beat: token ``index`` (0 .. cfg.tokens - 1), ``keep`` (1: the token
    is among the top k), ``last`` (1 on token cfg.tokens - 1)."""
    return data.StructLayout({"index": range(cfg.tokens), "keep": 1, "last": 1})


class SecStatus(enum.Enum, shape=2):
    """How a job ended."""
    OK = 0          #: the mask of the job was emitted (cfg.tokens beats)
    BAD_K = 1       #: k was 0 or above cfg.tokens; no mask beats
    BAD_LENGTH = 2  #: the job's last score was not the last image token of a row; no mask beats


#: Payload of the status beat that ends every job.
SecDone = data.StructLayout({"status": SecStatus})


class SemanticConcentrator(wiring.Component):
    """Importance by max over attention scores, then exact top-k by radix select, one job at a time.

    Ports
      ``jobs``    In stream of :func:`SecJob`: one descriptor starts a job.
      ``scores``  In stream of :func:`SecScore`: the job's attention scores, one per beat, in the
                  order ``scores[h, q, j]`` for each head ``h``, for each text token ``q``, image
                  tokens ``j = 0 .. T-1`` (``T = cfg.tokens``), ``last = 1`` on the final beat. A job
                  has ``R = heads * text`` rows of ``T`` scores, ``R >= 1`` chosen per job.
      ``mask``    Out stream of :func:`SecMask`: for a valid job, ``T`` beats in ascending token
                  index; ``keep`` marks exactly the ``k`` tokens of ``focus.sim.sec.top_k``
                  (largest importance, ties to the lower index). Invalid jobs emit none.
      ``status``  Out stream of :data:`SecDone`: one beat per job, after its last mask beat.

    Function
      ``importance[j] = max(scores[:, :, j])`` is built in a ``T`` x ``cfg.score_width`` memory
      (the first row writes, later rows read-modify-write with max; a transparent read port
      forwards a write to a read of the same address in the same cycle, which only ``T = 1`` does).
      Radix select then finds the k-th largest importance ``V``, MSB digit first: per
      ``cfg.sec_digit_bits``-bit digit, one pass over the buffer counts the candidates (tokens
      whose higher digits equal those chosen so far) in ``2**digit_bits`` bins, and a scan of the
      bins from the top picks the digit where the running count reaches the remaining k.
      The remaining k after the last digit is the number of tokens equal to ``V`` to keep; the emit
      pass keeps every token above ``V`` and the first that many equal to ``V``, in index order.

    Timing (``focus.sim.sec_cycles``; ``P = cfg.sec_passes``, ``B = 2**cfg.sec_digit_bits``)
      One score per cycle. From the last score's handshake to the status handshake:
      ``P * (T + 1 + B) + T + 3`` edges for a valid job, 1 for an invalid one, when ``mask`` and
      ``status`` are always ready; independent of k and the scores. ``jobs.ready`` is high only
      between jobs; ``scores.ready`` only while a job accumulates; a stall on ``mask`` holds the
      emit pipeline (the mask register is the only output state; ``valid`` never waits on ``ready``).
    Errors
      ``k = 0`` or ``k > T``: the job's scores are still taken up to ``last`` (the streams stay in
      step), then the status is BAD_K. ``last`` on a score that is not image token ``T - 1``: the job
      ends there with BAD_LENGTH. Neither emits mask beats, neither waits on anything but the streams.
    Reset
      Synchronous; abandons the job in progress (descriptor, scores taken, pending mask or status
      beat). The buffer needs no clearing: a job's first row overwrites it.
    Area
      The buffer, ``2**digit_bits`` counters of ``bits(T + 1)``, and a few ``bits(T + 1)`` and
      ``P * digit_bits`` registers: nothing else grows with ``T``.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        super().__init__({
            "jobs": In(stream.Signature(SecJob(cfg))),
            "scores": In(stream.Signature(SecScore(cfg))),
            "mask": Out(stream.Signature(SecMask(cfg))),
            "status": Out(stream.Signature(SecDone)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        T, W = cfg.tokens, cfg.score_width
        r, P = cfg.sec_digit_bits, cfg.sec_passes
        B = 1 << r
        jobs, scores, mask, status = self.jobs, self.scores, self.mask, self.status

        m.submodules.importance = buffer = Memory(shape=unsigned(W), depth=T, init=[])
        wr = buffer.write_port()
        rd = buffer.read_port(transparent_for=(wr,))

        # Job state.
        bad_k = Signal()
        code = Signal(SecStatus)
        k_rem = Signal(range(T + 1))          # k still to place; after the last digit: ties to keep
        index = Signal(range(T + 1))          # token counter of the current pass
        first_row = Signal()
        digit_pass = Signal(range(P))
        kth_importance = Signal(P * r)             # V, the k-th largest importance, MSB digits first

        # Histogram and its scan.
        hist = [Signal(range(T + 1), name=f"hist_{n}") for n in range(B)]
        bin_ = Signal(range(B), init=B - 1)
        running = Signal(range(T + 1))        # candidates in the bins above bin_
        found = Signal()
        chosen_bin = Signal(r)

        # Accumulation write stage (one cycle behind the read).
        acc_valid = Signal()
        acc_addr = Signal(range(T))
        acc_score = Signal(W)
        acc_first = Signal()

        # Read stage of the histogram and emit passes.
        rd_valid = Signal()
        rd_index = Signal(range(T))
        value = Signal(P * r)                 # the importance read, zero-extended to whole digits
        m.d.comb += [rd.addr.eq(index), rd.en.eq(1), value.eq(rd.data)]

        m.d.sync += acc_valid.eq(0)
        with m.If(acc_valid):
            m.d.comb += [
                wr.addr.eq(acc_addr),
                wr.data.eq(Mux(acc_first | (acc_score > rd.data), acc_score, rd.data)),
                wr.en.eq(1),
            ]

        def clear_histogram():
            m.d.sync += [h.eq(0) for h in hist]
            m.d.sync += [running.eq(0), found.eq(0), bin_.eq(B - 1)]

        with m.FSM(name="sec_state"):
            with m.State("IDLE"):
                m.d.comb += jobs.ready.eq(1)
                with m.If(jobs.valid):
                    k = jobs.payload.k
                    m.d.sync += [
                        bad_k.eq((k == 0) | (k > T)),
                        k_rem.eq(k),
                        index.eq(0),
                        first_row.eq(1),
                        digit_pass.eq(0),
                        kth_importance.eq(0),
                        rd_valid.eq(0),
                    ]
                    clear_histogram()
                    m.next = "ACCUMULATE"

            with m.State("ACCUMULATE"):
                m.d.comb += scores.ready.eq(1)
                with m.If(scores.valid):
                    m.d.sync += [
                        acc_valid.eq(1),
                        acc_addr.eq(index),
                        acc_score.eq(scores.payload.score),
                        acc_first.eq(first_row),
                    ]
                    with m.If(scores.payload.last):
                        m.d.sync += index.eq(0)
                        with m.If(bad_k):
                            m.d.sync += code.eq(SecStatus.BAD_K)
                            m.next = "STATUS"
                        with m.Elif(index != T - 1):
                            m.d.sync += code.eq(SecStatus.BAD_LENGTH)
                            m.next = "STATUS"
                        with m.Else():
                            m.d.sync += code.eq(SecStatus.OK)
                            m.next = "HISTOGRAM"
                    with m.Elif(index == T - 1):
                        m.d.sync += [index.eq(0), first_row.eq(0)]
                    with m.Else():
                        m.d.sync += index.eq(index + 1)

            with m.State("HISTOGRAM"):
                # Reads token `index` (0 .. T-1), counts the token read one cycle earlier; the
                # cycle with index == T only counts the last token.
                m.d.sync += [rd_valid.eq(index < T), rd_index.eq(index)]
                with m.If(index < T):
                    m.d.sync += index.eq(index + 1)
                with m.Else():
                    m.d.sync += index.eq(0)
                    m.next = "SCAN"
                candidate = Signal()
                digit = Signal(r)
                with m.Switch(digit_pass):
                    for p in range(P):
                        lo, hi = r * (P - 1 - p), r * (P - p)
                        with m.Case(p):
                            m.d.comb += [
                                candidate.eq(value[hi:] == kth_importance[hi:] if p else 1),
                                digit.eq(value[lo:hi]),
                            ]
                for n in range(B):
                    with m.If(rd_valid & candidate & (digit == n)):
                        m.d.sync += hist[n].eq(hist[n] + 1)

            with m.State("SCAN"):
                # Bins from the top; the first bin where the running count reaches k_rem holds
                # the k-th largest candidate: its digit joins V, the bins above it are kept whole.
                total = running + Array(hist)[bin_]
                hit = ~found & (total >= k_rem)
                pick = Mux(hit, bin_, chosen_bin)
                m.d.sync += [running.eq(total), bin_.eq(bin_ - 1)]
                with m.If(hit):
                    m.d.sync += [found.eq(1), chosen_bin.eq(bin_), k_rem.eq(k_rem - running)]
                with m.If(bin_ == 0):
                    with m.Switch(digit_pass):
                        for p in range(P):
                            with m.Case(p):
                                m.d.sync += kth_importance[r * (P - 1 - p):r * (P - p)].eq(pick)
                    clear_histogram()
                    with m.If(digit_pass == P - 1):
                        m.next = "EMIT"
                    with m.Else():
                        m.d.sync += digit_pass.eq(digit_pass + 1)
                        m.next = "HISTOGRAM"

            with m.State("EMIT"):
                # A two-stage pipeline (read, mask register) that holds while the mask beat waits.
                advance = Signal()
                above = Signal()
                tie = Signal()
                m.d.comb += [
                    advance.eq(~mask.valid | mask.ready),
                    rd.en.eq(advance),
                    above.eq(value > kth_importance),
                    tie.eq((value == kth_importance) & (k_rem != 0)),
                ]
                with m.If(advance):
                    m.d.sync += [rd_valid.eq(index < T), rd_index.eq(index), mask.valid.eq(rd_valid)]
                    with m.If(index < T):
                        m.d.sync += index.eq(index + 1)
                    with m.If(rd_valid):
                        m.d.sync += [
                            mask.payload.index.eq(rd_index),
                            mask.payload.keep.eq(above | tie),
                            mask.payload.last.eq(rd_index == T - 1),
                        ]
                        with m.If(tie):
                            m.d.sync += k_rem.eq(k_rem - 1)
                with m.If(mask.valid & mask.ready & mask.payload.last):
                    m.d.sync += index.eq(0)
                    m.next = "STATUS"

            with m.State("STATUS"):
                m.d.comb += [status.valid.eq(1), status.payload.status.eq(code)]
                with m.If(status.ready):
                    m.next = "IDLE"

        return m
