"""Semantic concentration (SEC): token importance from attention scores and exact top-k selection.

The integer contract is docs/semantics.md, section SEC (golden model: ``focus.sim.sec``); the
architecture, stream contracts and cycle formula are in docs/sec.md; the cycle model is
``focus.sim.sec_cycles``.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from .util import index_range

__all__ = ["SecJob", "SecScore", "SecMask", "SecStatus", "SecDone", "SemanticConcentrator"]


def SecJob(cfg: FocusConfig) -> data.StructLayout:
    """Payload of a job descriptor: ``k``, the number of image tokens to keep.

    ``k`` is unsigned, ``cfg.tokens.bit_length() + 1`` bits: every valid k (1 .. cfg.tokens) and
    some invalid ones above the token count fit, so the error path can be exercised.
    """
    return data.StructLayout({"k": unsigned(cfg.tokens.bit_length() + 1)})


def SecScore(cfg: FocusConfig) -> data.StructLayout:
    """Payload of one score beat: ``scores``, ``cfg.sec_lanes`` lanes of unsigned ``cfg.score_width``
    (lane 0 in the low bits), the scores of ``sec_lanes`` consecutive image tokens; ``last`` ends the job."""
    return data.StructLayout({"scores": data.ArrayLayout(unsigned(cfg.score_width), cfg.sec_lanes), "last": 1})


def SecMask(cfg: FocusConfig) -> data.StructLayout:
    """Payload of one mask beat, one word of ``cfg.sec_lanes`` tokens: ``keep`` bit ``i`` is 1 when
    token ``word * sec_lanes + i`` is among the top k (bits past ``cfg.tokens`` are 0); ``last`` is 1
    on the final word."""
    return data.StructLayout({"keep": cfg.sec_lanes, "last": 1})


def _tree_sum(values):
    """The sum of ``values`` as a balanced adder tree (depth log2 of their count)."""
    values = list(values)
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def _prefix_sums(bits):
    """Inclusive prefix sums ``bits[0] + .. + bits[i]`` for every ``i``, in log2 depth (each half
    recursively, then the left half's total added to every right sum)."""
    if len(bits) == 1:
        return [bits[0]]
    half = len(bits) // 2
    left, right = _prefix_sums(bits[:half]), _prefix_sums(bits[half:])
    return left + [left[-1] + s for s in right]


class SecStatus(enum.Enum, shape=2):
    """How a job ended."""
    OK = 0          #: the mask of the job was emitted (cfg.sec_words beats)
    BAD_K = 1       #: k was 0 or above cfg.tokens; no mask beats
    BAD_LENGTH = 2  #: the job's last beat was not the last word of a row; no mask beats


#: Payload of the status beat that ends every job.
SecDone = data.StructLayout({"status": SecStatus})


class SemanticConcentrator(wiring.Component):
    """Importance by max over attention scores, then exact top-k by radix select, one job at a time,
    ``L = cfg.sec_lanes`` tokens per beat and per cycle.

    Ports (``T = cfg.tokens``, ``L = cfg.sec_lanes``, ``N = cfg.sec_words = ceil(T / L)``; word
    ``b`` is tokens ``b*L .. b*L + L-1``, lanes past ``T`` in word ``N - 1`` are padding)
      ``jobs``    In stream of :func:`SecJob`: one descriptor starts a job.
      ``scores``  In stream of :func:`SecScore`: the job's attention scores, one word per beat, in the
                  order ``scores[h, q, b*L + i]`` for each head ``h``, for each text token ``q``,
                  words ``b = 0 .. N-1`` (lane ``i``), ``last = 1`` on the final beat. A job has
                  ``R = heads * text`` rows of ``N`` beats, ``R >= 1`` chosen per job. Padding lanes
                  are ignored (send 0).
      ``mask``    Out stream of :func:`SecMask`: for a valid job, ``N`` beats, words in ascending
                  order, ``last`` on word ``N - 1``; ``keep`` marks exactly the ``k`` tokens of
                  ``focus.sim.sec.top_k`` (largest importance, ties to the lower index), padding bits
                  are 0. Invalid jobs emit none.
      ``status``  Out stream of :data:`SecDone`: one beat per job, after its last mask beat.

    Function
      ``importance[j] = max(scores[:, :, j])`` is built in an ``N`` x ``L * cfg.score_width`` memory
      (the first row writes, later rows read-modify-write with a max per lane; a transparent read
      port forwards a write to a read of the same word in the same cycle, which only ``N = 1`` does).
      Radix select then finds the k-th largest importance ``V``, MSB digit first: per
      ``cfg.sec_digit_bits``-bit digit, one pass over the buffer, a word per cycle, counts the
      candidates (tokens whose higher digits equal those chosen so far) in ``2**digit_bits`` bins
      (per lane a one-hot bin, registered; per bin a popcount over the lanes, registered, then
      added), and a scan of the bins from the top picks the digit where the running count reaches
      the remaining k. The remaining k after
      the last digit is the number of tokens equal to ``V`` to keep; the emit pass keeps every token
      above ``V`` and the first that many equal to ``V``, in index order (within a word, a tie is
      kept while its prefix count of ties is at most the remaining k).

    Timing (``focus.sim.sec_cycles``; ``P = cfg.sec_passes``, ``B = 2**cfg.sec_digit_bits``)
      One score beat per cycle. From the last score's handshake to the status handshake:
      ``P * (N + 2 + B) + N + 4`` edges for a valid job, 1 for an invalid one, when ``mask`` and
      ``status`` are always ready; independent of k and the scores. ``jobs.ready`` is high only
      between jobs; ``scores.ready`` only while a job accumulates; a stall on ``mask`` holds the
      emit pipeline (the mask register is the only output state; ``valid`` never waits on ``ready``).
    Errors
      ``k = 0`` or ``k > T``: the job's scores are still taken up to ``last`` (the streams stay in
      step), then the status is BAD_K. ``last`` on a beat that is not word ``N - 1`` of a row: the
      job ends there with BAD_LENGTH. Neither emits mask beats, neither waits on anything but the
      streams.
    Reset
      Synchronous; abandons the job in progress (descriptor, scores taken, pending mask or status
      beat). The buffer needs no clearing: a job's first row overwrites it.
    Area
      The buffer, ``2**digit_bits`` counters of ``bits(T + 1)`` with a popcount of ``L`` lanes each,
      ``L`` digit comparators and decoders (``L x 2**digit_bits`` registered bin hits), and a few
      ``bits(T + 1)`` and ``P * digit_bits`` registers: only the
      buffer grows linearly with ``T``.
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
        L, N = cfg.sec_lanes, cfg.sec_words
        tail = T - (N - 1) * L                # live lanes of the last word, 1 .. L
        r, P = cfg.sec_digit_bits, cfg.sec_passes
        B = 1 << r
        jobs, scores, mask, status = self.jobs, self.scores, self.mask, self.status

        word = data.ArrayLayout(unsigned(W), L)
        m.submodules.importance = buffer = Memory(shape=word, depth=max(N, 2), init=[])   # (depth 2 at least: one row has no address bits)
        wr = buffer.write_port()
        # Only N = 1 reads a word in the cycle it is written (consecutive beats of one row hit it);
        # with more words the read port need not be transparent, and its read-data register then
        # loads from the memory alone (the write's max and address compare in front of it were
        # late on an 88.5 MHz ULX3S-85F build, 11.24 ns).
        rd = buffer.read_port(transparent_for=(wr,) if N == 1 else ())

        def live(word_index):
            """Per lane: 1 unless the lane is padding of the last word."""
            return [1 if i < tail else word_index != N - 1 for i in range(L)]

        # Job state.
        bad_k = Signal()
        code = Signal(SecStatus)
        k_rem = Signal(range(T + 1))          # k still to place; after the last digit: ties to keep
        index = Signal(range(N + 1))          # word counter of the current pass
        first_row = Signal()
        digit_pass = Signal(index_range(P))
        kth_importance = Signal(P * r)        # V, the k-th largest importance, MSB digits first

        # Histogram and its scan.
        hist = [Signal(range(T + 1), name=f"hist_{n}") for n in range(B)]
        bin_ = Signal(range(B), init=B - 1)
        need = Signal(range(T + 1))           # k_rem less the candidates in the bins above bin_
        found = Signal()
        chosen_bin = Signal(r)

        # Accumulation write stage (one cycle behind the read).
        acc_valid = Signal()
        acc_addr = Signal(index_range(N))
        acc_scores = Signal(word)
        acc_first = Signal()

        # Read stage of the histogram and emit passes: rd.data holds word rd_word when rd_valid.
        rd_valid = Signal()
        rd_word = Signal(index_range(N))
        values = [Signal(P * r, name=f"value_{i}") for i in range(L)]   # zero-extended to whole digits
        m.d.comb += [rd.addr.eq(index), rd.en.eq(1)]
        m.d.comb += [v.eq(rd.data[i]) for i, v in enumerate(values)]
        rd_live = live(rd_word)

        m.d.sync += acc_valid.eq(0)
        with m.If(acc_valid):
            m.d.comb += [wr.addr.eq(acc_addr), wr.en.eq(1)]
            m.d.comb += [wr.data[i].eq(Mux(acc_first | (acc_scores[i] > rd.data[i]), acc_scores[i], rd.data[i]))
                         for i in range(L)]

        # Histogram count stage: per bin, how many live candidate lanes of the word read have that
        # digit (a popcount over the lanes), registered before it is added to the bin.
        candidate = Signal(L)
        digits = [Signal(r, name=f"digit_{i}") for i in range(L)]
        with m.Switch(digit_pass):
            for p in range(P):
                lo, hi = r * (P - 1 - p), r * (P - p)
                with m.Case(p):
                    for i, v in enumerate(values):
                        m.d.comb += [
                            candidate[i].eq((v[hi:] == kth_importance[hi:] if p else 1) & rd_live[i]),
                            digits[i].eq(v[lo:hi]),
                        ]
        # Registered before the popcounts as a one-hot bin per lane (``bin_hits[n]`` bit ``i``: lane
        # ``i`` is a candidate with digit ``n``): the digit multiplexer, the compare and the decode
        # fill a cycle, and a bin's count is then a popcount of flip-flops (a decode of registered
        # digits in front of the popcounts was late on an 88.5 MHz ULX3S-85F build, 11.11 ns).
        bin_hits = [Signal(L, name=f"bin_hits_{n}") for n in range(B)]
        cand_valid = Signal()
        cand_last = Signal()
        counts = [Signal(range(L + 1), name=f"count_{n}") for n in range(B)]
        count_valid = Signal()
        count_last = Signal()                 # counts are those of word N - 1: the pass is complete after them

        # Emit compare stage: per lane, above V or equal to V (padding is neither).
        cmp_valid = Signal()
        cmp_word = Signal(index_range(N))
        above = Signal(L)
        tie = Signal(L)
        tie_rank = _prefix_sums([tie[i] for i in range(L)])     # ties in lanes 0 .. i
        # the word's tie count, registered with ``tie`` (its popcount in front of the subtraction
        # below, into k_rem, was late on an 88.5 MHz ULX3S-85F build, 11.23 ns)
        ties = Signal(range(L + 1))
        # A tie is kept while its rank (at most L) does not exceed k_rem: true whenever k_rem has a
        # bit above the ranks' width, else a compare of the low bits (the rank's adders into a
        # compare as wide as k_rem were on the latest path of an 87.5 MHz ULX3S-85F build)
        rank_width = max(len(r) for r in tie_rank)
        k_rem_above = k_rem[rank_width:].any() if len(k_rem) > rank_width else 0
        kept_ties = Cat(*[tie[i] & (k_rem_above | (tie_rank[i] <= k_rem[:rank_width])) for i in range(L)])
        # k_rem less the word's ties, floored at 0: the borrow of one subtraction decides (a compare
        # and then a subtraction chained two carry chains, the latest input of an 87.5 MHz
        # ULX3S-85F build, 11.48 ns)
        rem_after = Signal(signed(max(len(k_rem), len(ties)) + 1))
        m.d.comb += rem_after.eq(k_rem - ties)

        def clear_histogram():
            m.d.sync += [h.eq(0) for h in hist]
            m.d.sync += [found.eq(0), bin_.eq(B - 1)]

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
                        cand_valid.eq(0),
                        count_valid.eq(0),
                        cmp_valid.eq(0),
                    ]
                    clear_histogram()
                    m.next = "ACCUMULATE"

            with m.State("ACCUMULATE"):
                m.d.comb += scores.ready.eq(1)
                with m.If(scores.valid):
                    m.d.sync += [
                        acc_valid.eq(1),
                        acc_addr.eq(index),
                        acc_scores.eq(scores.payload.scores),
                        acc_first.eq(first_row),
                    ]
                    with m.If(scores.payload.last):
                        m.d.sync += index.eq(0)
                        with m.If(bad_k):
                            m.d.sync += code.eq(SecStatus.BAD_K)
                            m.next = "STATUS"
                        with m.Elif(index != N - 1):
                            m.d.sync += code.eq(SecStatus.BAD_LENGTH)
                            m.next = "STATUS"
                        with m.Else():
                            m.d.sync += code.eq(SecStatus.OK)
                            m.next = "HISTOGRAM"
                    with m.Elif(index == N - 1):
                        m.d.sync += [index.eq(0), first_row.eq(0)]
                    with m.Else():
                        m.d.sync += index.eq(index + 1)

            with m.State("HISTOGRAM"):
                # Four stages: read word `index` (0 .. N-1); register its bin hits (each candidate
                # lane's one-hot bin); count them per bin; add the counts into the bins. Word 0 was
                # read in the previous cycle unless this is the first pass.
                m.d.sync += [rd_valid.eq(index < N), rd_word.eq(index), need.eq(k_rem)]
                with m.If(index < N):
                    m.d.sync += index.eq(index + 1)
                m.d.sync += [cand_valid.eq(rd_valid), cand_last.eq(rd_word == N - 1)]
                m.d.sync += [hits.eq(Cat(*[candidate[i] & (digits[i] == n) for i in range(L)]))
                             for n, hits in enumerate(bin_hits)]
                m.d.sync += [count_valid.eq(cand_valid), count_last.eq(cand_last)]
                with m.If(cand_valid):
                    m.d.sync += [c.eq(_tree_sum(hits[i] for i in range(L)))
                                 for hits, c in zip(bin_hits, counts)]
                with m.If(count_valid):
                    m.d.sync += [h.eq(h + c) for h, c in zip(hist, counts)]
                    with m.If(count_last):
                        m.d.sync += index.eq(0)
                        m.next = "SCAN"

            with m.State("SCAN"):
                # Bins from the top; the first bin where the running count reaches k_rem holds
                # the k-th largest candidate: its digit joins V, the bins above it are kept whole.
                # The bins shift up one a cycle, so bin bin_ is always in the top register (no
                # B-way multiplexer in this loop), and ``need`` (k_rem less the bins above) is
                # compared with it directly (no adder before the compare): 100 MHz on ECP5.
                top = hist[B - 1]
                m.d.sync += [hist[n].eq(hist[n - 1]) for n in range(1, B)]
                hit = ~found & (top >= need)
                pick = Mux(hit, bin_, chosen_bin)
                m.d.sync += [need.eq(need - top), bin_.eq(bin_ - 1)]
                with m.If(hit):
                    m.d.sync += [found.eq(1), chosen_bin.eq(bin_), k_rem.eq(need)]
                with m.If(bin_ == 0):
                    with m.Switch(digit_pass):
                        for p in range(P):
                            with m.Case(p):
                                m.d.sync += kth_importance[r * (P - 1 - p):r * (P - p)].eq(pick)
                    clear_histogram()
                    # Word 0 is read now (index is 0): the next pass starts with its data.
                    m.d.sync += [rd_valid.eq(1), rd_word.eq(0), index.eq(1)]
                    with m.If(digit_pass == P - 1):
                        m.next = "EMIT"
                    with m.Else():
                        m.d.sync += digit_pass.eq(digit_pass + 1)
                        m.next = "HISTOGRAM"

            with m.State("EMIT"):
                # A three-stage pipeline (read, compare, mask register) that holds while the mask
                # beat waits. A tie is kept while the ties up to its lane do not exceed k_rem.
                advance = Signal()
                m.d.comb += [advance.eq(~mask.valid | mask.ready), rd.en.eq(advance)]
                equal = [rd_live[i] & (v == kth_importance) for i, v in enumerate(values)]
                with m.If(advance):
                    m.d.sync += [
                        rd_valid.eq(index < N), rd_word.eq(index),
                        cmp_valid.eq(rd_valid), cmp_word.eq(rd_word),
                        above.eq(Cat(*[rd_live[i] & (v > kth_importance) for i, v in enumerate(values)])),
                        tie.eq(Cat(*equal)),
                        ties.eq(_tree_sum(equal)),
                        mask.valid.eq(cmp_valid),
                    ]
                    with m.If(index < N):
                        m.d.sync += index.eq(index + 1)
                    with m.If(cmp_valid):
                        m.d.sync += [
                            mask.payload.keep.eq(above | kept_ties),
                            mask.payload.last.eq(cmp_word == N - 1),
                            k_rem.eq(Mux(rem_after[-1], 0, rem_after[:len(k_rem)])),
                        ]
                with m.If(mask.valid & mask.ready & mask.payload.last):
                    m.d.sync += index.eq(0)
                    m.next = "STATUS"

            with m.State("STATUS"):
                m.d.comb += [status.valid.eq(1), status.payload.status.eq(code)]
                with m.If(status.ready):
                    m.next = "IDLE"

        return m
