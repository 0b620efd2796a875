"""The host link's protocol engine: frames of bytes in from the UART, accelerator streams out, and
the accelerator's mask, results and done beats back as frames (format: :mod:`focus.fpga.protocol`,
docs/link.md).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from ..hdl.accelerator import JobCommand, JobDone, JobMode
from ..hdl.passbuffer import N_TILES_WIDTH
from ..hdl.sec import SecMask, SecScore
from ..hdl.streams import ResultBeat, VectorBeat, WeightRow
from ..hdl.util import CollisionFreeReadPort
from .protocol import (DEFAULT_MAX_PAYLOAD, JOB_BYTES, SYNC, VERSION, Command, ErrorCode, Identity, Reply,
                       beat_sizes, identify_payload)

__all__ = ["HostLink", "crc16_step", "default_frame_timeout"]

# A response waiting for the transmitter: what kind of frame, the command it answers, an error code.
_ACK, _ERROR, _IDENTIFY = 0, 1, 2
#: Bits of the transmitter's payload register per copy of its load and shift enables.
TX_SEGMENT_BITS = 64
_Response = data.StructLayout({"kind": 2, "command": 8, "code": 8})


def _crc16_python_step(crc: int, byte: int) -> int:
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        crc &= 0xFFFF
    return crc


#: For each bit of the next CRC, the bits of (crc, byte) (crc bits 0..15, byte bits 16..23) whose
#: XOR it is: one CRC-16/CCITT step is linear over GF(2).
_CRC16_TAPS = [[i for i in range(24) if _crc16_python_step((1 << i) & 0xFFFF, (1 << i) >> 16) >> bit & 1]
               for bit in range(16)]


def crc16_step(crc, byte):
    """CRC-16/CCITT-FALSE after one more byte: Amaranth values in (16 and 8 bits), a 16-bit value out,
    one XOR of a few inputs per bit (no chain of eight conditional steps)."""
    inputs = Cat(crc[:16], byte[:8])
    bits = []
    for taps in _CRC16_TAPS:
        value = inputs[taps[0]]
        for tap in taps[1:]:
            value = value ^ inputs[tap]
        bits.append(value)
    return Cat(*bits)


def default_frame_timeout(clk_freq: int, divisor: int) -> int:
    """Clock cycles without a byte after which a partial frame is dropped: 20 ms, and at least 64
    byte times (so a frame whose bytes come back to back never trips it)."""
    return max(int(clk_freq) // 50, 64 * 10 * divisor)


class HostLink(wiring.Component):
    """Frames from the host become beats on the accelerator's input streams; the accelerator's
    output beats become frames to the host.

    ``rx``/``tx`` are byte streams (to and from :class:`~focus.fpga.uart.UartRx`/``UartTx``);
    ``command``, ``scores``, ``tokens``, ``weights`` go to the accelerator's inputs, ``mask``,
    ``results``, ``done`` come from its outputs; ``accel_reset`` is high for one cycle when a RESET
    frame arrives (the board top resets the accelerator with it).

    Receiving
      A parser takes one byte a cycle (``rx.ready`` is always high): it skips bytes until the sync
      byte (the first byte it skips after a frame that ended without an error is answered with
      GARBAGE), then reads command, length, payload (into a ``max_payload``-byte buffer) and CRC. A
      length above ``max_payload`` is an error at once; a gap of ``frame_timeout`` cycles between
      two bytes of a frame drops it (TIMEOUT). After the CRC: a bad CRC, a wrong length, an unknown
      command or a JOB field out of range is answered with an ERROR frame and the frame is dropped;
      IDENTIFY is answered at once; RESET pulses ``accel_reset``, abandons a delivery in progress
      (a beat offered in the RESET's cycle may still be taken: the streams' consumers reset with
      ``accel_reset`` a cycle later, as the board top does) and is acknowledged; JOB, SCORES, TOKENS and WEIGHTS start the delivery of their beats to the
      accelerator, and only when the last beat was taken is the frame acknowledged (ACK). A frame
      other than IDENTIFY and RESET that arrives during a delivery is refused (BUSY). Nothing
      the host sends can stop the parser: it is back hunting for a sync byte after every frame,
      error or timeout.
    Sending
      One frame at a time, whole, in the order: responses (ACK, ERROR, IDENTIFY), mask beats,
      result beats, done beats; a beat of ``mask``, ``results`` or ``done`` is taken when its frame
      starts, so a job's done frame follows its last result frame. Responses wait in small queues;
      when they are full (an error flood) further error responses are dropped, never the parser.
    Reset
      Synchronous; forgets every frame in progress.
    """

    def __init__(self, cfg: FocusConfig, *, clk_freq: int, baud: int, divisor: int,
                 max_payload: int = DEFAULT_MAX_PAYLOAD, frame_timeout: int | None = None):
        self.cfg = cfg
        self.sizes = beat_sizes(cfg)
        layouts = {"scores": SecScore(cfg), "tokens": VectorBeat(cfg), "weights": WeightRow(cfg),
                   "results": ResultBeat(cfg), "mask": SecMask(cfg), "done": JobDone}
        for name, layout in layouts.items():
            if layout.size != self.sizes.bits[name]:
                raise ValueError(f"the {name} layout has {layout.size} bits, focus.fpga.protocol says "
                                 f"{self.sizes.bits[name]}")
        self.upload_bytes = {Command.SCORES: self.sizes.bytes["scores"], Command.TOKENS: self.sizes.bytes["tokens"],
                             Command.WEIGHTS: self.sizes.bytes["weights"]}
        need = max(*self.upload_bytes.values(), JOB_BYTES)
        if not need <= max_payload <= 0xFFFF:
            raise ValueError(f"max_payload={max_payload} is not allowed: {need} .. 65535 (a whole beat must fit)")
        self.max_payload = max_payload
        self.frame_timeout = frame_timeout or default_frame_timeout(clk_freq, divisor)
        self.identity = Identity(version=VERSION, max_payload=max_payload, clk_freq=int(clk_freq), baud=int(baud),
                                 frame_timeout=self.frame_timeout, digest=cfg.digest())
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "command": Out(stream.Signature(JobCommand(cfg))),
            "scores": Out(stream.Signature(SecScore(cfg))),
            "tokens": Out(stream.Signature(VectorBeat(cfg))),
            "weights": Out(stream.Signature(WeightRow(cfg))),
            "mask": In(stream.Signature(SecMask(cfg))),
            "results": In(stream.Signature(ResultBeat(cfg))),
            "done": In(stream.Signature(JobDone)),
            "accel_reset": Out(1),
            "busy": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        max_bb = max(*self.upload_bytes.values(), JOB_BYTES)

        # ---------------------------------------------------------------- response queues
        m.submodules.parser_responses = presp = fifo.SyncFIFO(width=_Response.size, depth=4)
        m.submodules.drain_responses = dresp = fifo.SyncFIFO(width=_Response.size, depth=2)
        p_entry = Signal(_Response)
        p_push = Signal()
        d_entry = Signal(_Response)
        # The parser's response goes into its queue a cycle later, from registers: its kind and
        # code are decided by the CRC compare of the byte just received, and that compare in
        # front of the queue's storage was late on the ULX3S-85F.
        p_entry_r = Signal(_Response)
        p_push_r = Signal()
        m.d.sync += [p_entry_r.eq(p_entry), p_push_r.eq(p_push)]
        m.d.comb += [presp.w_data.eq(p_entry_r), presp.w_en.eq(p_push_r), dresp.w_data.eq(d_entry)]

        # ``told``: this stretch of bad input has had its ERROR answer, so bytes outside a frame
        # are skipped silently until the next sync byte (one GARBAGE answer per stretch, and none
        # for the rest of a frame refused at its length)
        told = Signal()

        def respond(kind, command, code=0):
            m.d.comb += [p_entry.kind.eq(kind), p_entry.command.eq(command), p_entry.code.eq(code),
                         p_push.eq(1)]
            if kind == _ERROR:
                m.d.comb += self.error.eq(1)
                m.d.sync += told.eq(1)

        # ---------------------------------------------------------------- receive buffer
        # (the parser writes a frame's payload only while no delivery reads the buffer)
        m.submodules.buffer = buf = memory.Memory(shape=8, depth=self.max_payload, init=[],
                                                  attrs={"no_rw_check": 1})
        wp = buf.write_port()
        rp = CollisionFreeReadPort(m, buf, wp)

        # ---------------------------------------------------------------- parser
        rx = self.rx
        m.d.comb += rx.ready.eq(1)
        got = rx.valid
        byte = rx.payload
        cmd = Signal(8)
        length = Signal(16)
        count = Signal(16)
        crc = Signal(16, init=0xFFFF)
        crc_lo = Signal(8)
        phase = Signal(range(max_bb))
        writable = Signal()                       # this frame's payload goes into the buffer
        timer = Signal(range(self.frame_timeout + 1))
        drain_busy = Signal()
        start_drain = Signal()
        abort = Signal()

        last_phase = Signal(range(max_bb))        # the frame's beat size less one (0 for the others)
        # The CRC1 decision (respond, or start the delivery) reads flags registered as the frame's
        # bytes arrive, not the command, length and CRC registers: its compares and the command
        # decode, from ``length`` into the delivery's ``d_cmd`` enable, were five LUTs deep and the
        # only late input of a ULX3S-85F build at 85 MHz (11.88 ns).
        cmd_is = {name: Signal(name=f"cmd_is_{name}") for name in ("identify", "reset", "job", "upload")}
        len_zero, len_job = Signal(), Signal()    # the frame's length is 0 / JOB_BYTES
        crc_lo_ok = Signal()                      # the CRC's low byte matched

        with m.FSM(name="parser_state"):
            def byte_or_timeout(state_body):
                """Run ``state_body`` when a byte arrives; else count towards the frame timeout."""
                with m.If(got):
                    m.d.sync += timer.eq(0)
                    state_body()
                with m.Elif(timer == self.frame_timeout):
                    respond(_ERROR, cmd, ErrorCode.TIMEOUT)
                    m.next = "HUNT"
                with m.Else():
                    m.d.sync += timer.eq(timer + 1)

            with m.State("HUNT"):
                m.d.sync += [timer.eq(0), cmd.eq(0)]
                with m.If(got & (byte == SYNC)):
                    m.d.sync += [crc.eq(0xFFFF), told.eq(0)]
                    m.next = "CMD"
                with m.Elif(got & ~told):
                    respond(_ERROR, 0, ErrorCode.GARBAGE)

            with m.State("CMD"):
                def body():
                    m.d.sync += [cmd.eq(byte), crc.eq(crc16_step(crc, byte)), last_phase.eq(0),
                                 cmd_is["identify"].eq(byte == Command.IDENTIFY),
                                 cmd_is["reset"].eq(byte == Command.RESET), cmd_is["job"].eq(byte == Command.JOB),
                                 cmd_is["upload"].eq((byte == Command.SCORES) | (byte == Command.TOKENS)
                                                     | (byte == Command.WEIGHTS))]
                    for command, size in self.upload_bytes.items():
                        with m.If(byte == command):
                            m.d.sync += last_phase.eq(size - 1)
                    m.next = "LEN0"
                byte_or_timeout(body)

            with m.State("LEN0"):
                def body():
                    m.d.sync += [length[:8].eq(byte), crc.eq(crc16_step(crc, byte))]
                    m.next = "LEN1"
                byte_or_timeout(body)

            with m.State("LEN1"):
                def body():
                    full = Cat(length[:8], byte)
                    m.d.sync += [length[8:].eq(byte), crc.eq(crc16_step(crc, byte)), count.eq(0), phase.eq(0),
                                 writable.eq(~drain_busy), len_zero.eq(full == 0), len_job.eq(full == JOB_BYTES)]
                    with m.If(full > self.max_payload):
                        respond(_ERROR, cmd, ErrorCode.BAD_LENGTH)
                        m.next = "HUNT"
                    with m.Elif(full == 0):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "PAYLOAD"
                byte_or_timeout(body)

            with m.State("PAYLOAD"):
                def body():
                    m.d.comb += [wp.addr.eq(count), wp.data.eq(byte), wp.en.eq(writable)]
                    m.d.sync += [crc.eq(crc16_step(crc, byte)), count.eq(count + 1),
                                 phase.eq(Mux(phase == last_phase, 0, phase + 1))]
                    with m.If(count + 1 == length):
                        m.next = "CRC0"
                byte_or_timeout(body)

            with m.State("CRC0"):
                def body():
                    m.d.sync += [crc_lo.eq(byte), crc_lo_ok.eq(byte == crc[:8])]
                    m.next = "CRC1"
                byte_or_timeout(body)

            with m.State("CRC1"):
                def body():
                    m.next = "HUNT"
                    with m.If(~crc_lo_ok | (byte != crc[8:])):
                        respond(_ERROR, cmd, ErrorCode.BAD_CRC)
                    with m.Elif(cmd_is["identify"]):
                        with m.If(len_zero):
                            respond(_IDENTIFY, cmd)
                        with m.Else():
                            respond(_ERROR, cmd, ErrorCode.BAD_LENGTH)
                    with m.Elif(cmd_is["reset"]):
                        with m.If(len_zero):
                            m.d.comb += [abort.eq(1), self.accel_reset.eq(1)]
                            respond(_ACK, cmd)
                        with m.Else():
                            respond(_ERROR, cmd, ErrorCode.BAD_LENGTH)
                    with m.Elif(cmd_is["job"] | cmd_is["upload"]):
                        with m.If(~writable | drain_busy):
                            respond(_ERROR, cmd, ErrorCode.BUSY)
                        with m.Elif(cmd_is["job"] & ~len_job):
                            respond(_ERROR, cmd, ErrorCode.BAD_LENGTH)
                        with m.Elif(cmd_is["upload"] & (len_zero | (phase != 0))):
                            respond(_ERROR, cmd, ErrorCode.BAD_LENGTH)
                        with m.Else():
                            m.d.comb += start_drain.eq(1)
                    with m.Else():
                        respond(_ERROR, cmd, ErrorCode.UNKNOWN)
                byte_or_timeout(body)

        # ---------------------------------------------------------------- delivery of a frame's beats
        d_cmd = Signal(8)
        d_len = Signal(16)
        addr = Signal(16)
        d_last_phase = Signal(range(max_bb))      # the frame's beat size less one, set at its start
        word = Signal(max_bb * 8)
        # ``word``'s byte enables are flip-flops, one per byte (``kept_latch*``): set in READ, so high
        # in the cycle after, LATCH, to the byte's bit of the one-hot ``d_select``, reset to byte 0
        # in IDLE (a LUT of a shared ``latching`` flip-flop and that bit was 10.94 ns on an 87.5 MHz
        # ULX3S-85F build). ``d_select`` is also the beat's byte counter: its bit ``d_last_phase``
        # marks the last byte.
        # A decode of a binary byte counter and the state, and a clear of ``word`` at ``start_drain`` (the
        # parser's CRC compare), were the ULX3S-85F's two late inputs at 75 MHz (13.4 ns). A beat's
        # bytes are all written before it is offered, so ``word`` needs no clear; a byte latched in
        # IDLE after an abort in READ or LATCH is overwritten by the next frame's. ``d_at_last`` is
        # ``d_select``'s bit ``d_last_phase``, registered in READ (neither changes before LATCH), and
        # LATCH steps ``d_select`` whether or not the frame is abandoned (IDLE sets it to byte 0 in
        # the next cycle, when no byte is latched): the select of that bit and the parser's
        # abort (its CRC compare) in front of ``d_select``'s inputs were late on an 80 MHz
        # ULX3S-85F build (11.72 ns).
        # The buffer's read data (the block RAM's registered read) is registered once more, in the
        # fabric (``rp_data``), before it fans out into ``word``'s bytes, and the byte enables
        # follow a cycle later (``latch`` is set in READ, ``latch_late`` in LATCH): the block RAM's
        # output straight into the bytes of ``word`` was the largest group of late inputs of an
        # 88.5 MHz ULX3S-85F build (37, 11.29 ns). A beat's last byte is then latched in SETTLE,
        # before PUSH offers the beat.
        d_select = Signal(max_bb, init=1)
        d_at_last = Signal()
        rp_data = Signal(8)
        m.d.sync += rp_data.eq(rp.data)
        latch = [Signal(name=f"kept_latch{i}") for i in range(max_bb)]
        latch_late = [Signal(name=f"kept_latch_late{i}") for i in range(max_bb)]
        m.d.sync += [enable.eq(0) for enable in latch]
        m.d.sync += [late.eq(enable) for late, enable in zip(latch_late, latch)]
        for i in range(max_bb):
            with m.If(latch_late[i]):
                m.d.sync += word[8 * i:8 * i + 8].eq(rp_data)
        m.d.comb += [rp.addr.eq(addr), rp.en.eq(1), self.busy.eq(drain_busy)]

        targets = {Command.JOB: self.command, Command.SCORES: self.scores, Command.TOKENS: self.tokens,
                   Command.WEIGHTS: self.weights}
        job_k, job_tiles, job_mode = word[0:32], word[32:48], word[48:56]
        k_width = JobCommand(cfg).members["k"].width
        job_ok = ((job_k >> k_width) == 0) & ((job_tiles >> N_TILES_WIDTH) == 0) & (job_tiles != 0) & (job_mode <= 1)
        command_payload = Signal(JobCommand(cfg))
        m.d.comb += [command_payload.k.eq(job_k), command_payload.n_tiles.eq(job_tiles),
                     command_payload.mode.eq(Mux(job_mode[0], JobMode.DENSE, JobMode.FOCUS))]
        for command, port in targets.items():
            if command == Command.JOB:
                m.d.comb += port.payload.eq(command_payload)
            else:
                m.d.comb += port.payload.eq(word[:port.payload.shape().size])

        with m.FSM(name="delivery_state"):
            with m.State("IDLE"):
                m.d.sync += d_select.eq(1)
                with m.If(start_drain):
                    m.d.sync += [d_cmd.eq(cmd), d_len.eq(length), addr.eq(0), d_last_phase.eq(JOB_BYTES - 1)]
                    for command, size in self.upload_bytes.items():
                        with m.If(cmd == command):
                            m.d.sync += d_last_phase.eq(size - 1)
                    m.next = "READ"
            with m.State("READ"):                 # the buffer's read port has addr now
                m.d.comb += drain_busy.eq(1)
                m.d.sync += [enable.eq(d_select[i]) for i, enable in enumerate(latch)]
                m.d.sync += d_at_last.eq(d_select.bit_select(d_last_phase, 1))
                with m.If(abort):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "LATCH"
            with m.State("LATCH"):
                m.d.comb += drain_busy.eq(1)
                m.d.sync += [addr.eq(addr + 1), d_select.eq(Mux(d_at_last, 1, d_select.rotate_left(1)))]
                with m.If(abort):
                    m.next = "IDLE"
                with m.Elif(d_at_last):                 # the beat's last byte
                    m.next = "SETTLE"
                with m.Else():
                    m.next = "READ"
            with m.State("SETTLE"):               # the beat's last byte is latched now
                m.d.comb += drain_busy.eq(1)
                with m.If(abort):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "PUSH"
            with m.State("PUSH"):
                m.d.comb += drain_busy.eq(1)
                with m.If((d_cmd == Command.JOB) & ~job_ok):
                    m.next = "BAD_VALUE"
                with m.Else():
                    for command, port in targets.items():
                        with m.If(d_cmd == command):
                            m.d.comb += port.valid.eq(1)
                            with m.If(port.ready):
                                with m.If(addr == d_len):
                                    m.next = "ACK"
                                with m.Else():
                                    m.next = "READ"
                # A RESET frame ends the delivery. The beat is offered even then: ``valid`` does not
                # wait for the frame's CRC check (on the ECPIX-5 that chain, into the register
                # slices' enables, was the worst path); a beat taken in this cycle is cleared by
                # ``accel_reset``, which the board top registers into the slices' and the
                # accelerator's reset.
                with m.If(abort):
                    m.next = "IDLE"
            for state, kind, code in (("ACK", _ACK, 0), ("BAD_VALUE", _ERROR, ErrorCode.BAD_VALUE)):
                with m.State(state):
                    m.d.comb += drain_busy.eq(1)
                    m.d.comb += [d_entry.kind.eq(kind), d_entry.command.eq(d_cmd), d_entry.code.eq(code),
                                 dresp.w_en.eq(1)]
                    if kind == _ERROR:
                        m.d.comb += self.error.eq(1)
                    with m.If(abort | dresp.w_rdy):
                        m.next = "IDLE"

        # ---------------------------------------------------------------- transmitter
        sizes = self.sizes.bytes
        ident = identify_payload(self.identity)
        tx_bytes = max(len(ident), sizes["mask"], sizes["results"], sizes["done"], 2)
        tx_cmd = Signal(8)
        tx_len = Signal(16)
        tx_data = Signal(tx_bytes * 8)
        tx_left = Signal(16)                      # payload bytes still to send
        tx_empty = Signal()                       # tx_left == 0, registered
        tx_advance = Signal()                     # the byte on tx went out: shift the payload now
        tx_crc = Signal(16, init=0xFFFF)
        tx = self.tx
        ident_const = Const(int.from_bytes(ident, "little"), len(ident) * 8)

        def response(entry):
            """The reply, length and payload of a response queue's entry."""
            kind = entry.kind
            return (Mux(kind == _ACK, Reply.ACK, Mux(kind == _ERROR, Reply.ERROR, Reply.IDENTIFY)),
                    Mux(kind == _ACK, 1, Mux(kind == _ERROR, 2, len(ident))),
                    Mux(kind == _ACK, entry.command,
                        Mux(kind == _ERROR, Cat(entry.code, entry.command), ident_const)))

        # IDLE registers which source's frame goes next (by priority); TAKE takes that beat. The
        # sources' ready signals are then driven by registers alone: a choice made in the same
        # cycle chained the response queues' levels and the slices' valid signals into the done
        # slice's enable (the ULX3S-85F's worst path, 15 ns, mostly routing across the chip).
        # The wide payload register spans the chip (it loads from the result slice): it loads in
        # TAKE and shifts on ``tx_advance``, through per-segment register copies of both (below),
        # and its count of bytes left is a down-counter with a registered empty flag (the 85F's
        # worst path was the count's compare into that enable, 13 ns). ``tx_advance`` costs one
        # cycle per payload byte while the UART still sends the byte (10 bit times), so the line
        # sees no gap.
        sources = ("parser", "drain", "mask", "results", "done")
        pick = Signal(data.StructLayout({name: 1 for name in sources}))
        offered = {"parser": presp.r_rdy, "drain": dresp.r_rdy, "mask": self.mask.valid,
                   "results": self.results.valid, "done": self.done.valid}
        # The response queues' head, as the frame it becomes, is registered in IDLE too (the queue
        # that wins the pick is not read before TAKE, so its head holds): TAKE's frame multiplexer
        # then starts at registers, not at a LUT-RAM read and the reply decoding (on the ECPIX-5 that
        # read, decoded and routed into the payload register's inputs was the worst path, 10.1 ns).
        p_head, d_head = Signal(_Response), Signal(_Response)
        head = Signal(_Response)
        m.d.comb += [p_head.eq(presp.r_data), d_head.eq(dresp.r_data), head.eq(Mux(presp.r_rdy, p_head, d_head))]
        head_frame = response(head)
        reply_cmd = Signal(8)
        reply_len = Signal(range(max(len(ident), 2) + 1))
        reply_data = Signal(len(head_frame[2]))
        # The sources' ready signals are the pick flip-flops themselves (set in IDLE, cleared in TAKE,
        # so high in TAKE only), not a decoding of the state: each drives a register slice's enables
        # over its wide payload, so the fewer levels before that fan-out the better.
        m.d.comb += [self.mask.ready.eq(pick.mask), self.results.ready.eq(pick.results),
                     self.done.ready.eq(pick.done)]
        # tx_data's enables: it loads in TAKE and shifts a byte on ``tx_advance``. Both conditions
        # are known a cycle ahead (IDLE taking a beat; PAYLOAD handing a byte to the UART), so each
        # 64-bit segment of the register has its own flip-flop copy of each (``kept_*``: Yosys
        # keeps them apart, focus.hdl.util.KEEP_COPIES) that sits by the segment: no state decoding
        # and no single net across the whole payload (on the ULX3S-85F the state decoding into the
        # enables of the whole register was the worst path, 15.4 ns: 2 LUTs, 14 ns of routing).
        load_next, shift_next = Signal(), Signal()
        shifted = Signal.like(tx_data)
        m.d.comb += shifted.eq(tx_data >> 8)

        def frame_of(picks):
            """The picked beat's frame (reply, length, payload), selected by ``picks`` (flip-flops:
            no state decoding on the payload's way into tx_data, whose segments load it in TAKE only)."""
            frame = (reply_cmd, reply_len, reply_data)              # the parser's or the drain's
            choices = [(picks["mask"], Reply.MASK, sizes["mask"], self.mask.payload),
                       (picks["results"], Reply.RESULT, sizes["results"], self.results.payload),
                       (picks["done"], Reply.DONE, sizes["done"], self.done.payload)]
            for sel, reply, size, payload in reversed(choices):
                frame = (Mux(sel, reply, frame[0]), Mux(sel, size, frame[1]), Mux(sel, payload, frame[2]))
            return frame

        # Each segment selects its bits of the frame with its own copies of the pick flip-flops
        # (``kept_pick_*``, set and cleared with ``pick``): one pick bit selecting the whole payload
        # reached across the chip (on an 87.5 MHz ULX3S-85F build, 11.27 ns into 25 of tx_data's
        # inputs).
        pick_copies = []                                     # (copy, source name), assigned with pick
        for first in range(0, len(tx_data), TX_SEGMENT_BITS):
            bits = slice(first, min(first + TX_SEGMENT_BITS, len(tx_data)))
            index = first // TX_SEGMENT_BITS
            load = Signal(name=f"kept_tx_load{index}")
            shift = Signal(name=f"kept_tx_shift{index}")
            m.d.sync += [load.eq(load_next), shift.eq(shift_next)]
            picks = {name: Signal(name=f"kept_pick_{name}{index}") for name in ("mask", "results", "done")}
            pick_copies += [(copy, name) for name, copy in picks.items()]
            frame_data = Signal.like(tx_data, name=f"frame_data{index}")
            m.d.comb += frame_data.eq(frame_of(picks)[2])
            with m.If(load):
                m.d.sync += tx_data[bits].eq(frame_data[bits])
            with m.Elif(shift):
                m.d.sync += tx_data[bits].eq(shifted[bits])
        frame = frame_of({name: getattr(pick, name) for name in ("mask", "results", "done")})
        m.d.sync += tx_advance.eq(0)
        with m.FSM(name="tx_state"):
            with m.State("IDLE"):
                m.d.sync += tx_crc.eq(0xFFFF)
                m.d.sync += [reply_cmd.eq(head_frame[0]), reply_len.eq(head_frame[1]), reply_data.eq(head_frame[2])]
                taken = Const(0, 1)
                for name in sources:
                    m.d.sync += getattr(pick, name).eq(offered[name] & ~taken)
                    m.d.sync += [copy.eq(offered[name] & ~taken) for copy, source in pick_copies
                                 if source == name]
                    taken = taken | offered[name]
                with m.If(taken):
                    m.d.comb += load_next.eq(1)
                    m.next = "TAKE"
            with m.State("TAKE"):
                # the picked beat's frame is loaded whether or not the source still offers it; a
                # source that was reset since (RESET clears the slices) no longer does, and the
                # frame is not sent: back to IDLE
                m.next = "IDLE"
                m.d.sync += [tx_cmd.eq(frame[0]), tx_len.eq(frame[1])]
                with m.If(pick.parser & presp.r_rdy):
                    m.d.comb += presp.r_en.eq(1)
                    m.next = "SYNC"
                with m.If(pick.drain & dresp.r_rdy):
                    m.d.comb += dresp.r_en.eq(1)
                    m.next = "SYNC"
                m.d.sync += pick.eq(0)           # so pick is 0 outside TAKE: it drives the ready signals
                m.d.sync += [copy.eq(0) for copy, _ in pick_copies]
                for name in ("mask", "results", "done"):
                    with m.If(getattr(pick, name) & getattr(self, name).valid):
                        m.next = "SYNC"
            sequence = [("SYNC", Const(SYNC, 8), "CMD", False), ("CMD", tx_cmd, "LEN0", True),
                        ("LEN0", tx_len[:8], "LEN1", True), ("LEN1", tx_len[8:], "PAYLOAD", True)]
            for state, value, following, counted in sequence:
                with m.State(state):
                    if state == "CMD":            # tx_len was loaded in TAKE
                        m.d.sync += [tx_left.eq(tx_len), tx_empty.eq(tx_len == 0)]
                    m.d.comb += [tx.valid.eq(1), tx.payload.eq(value)]
                    with m.If(tx.ready):
                        if counted:
                            m.d.sync += tx_crc.eq(crc16_step(tx_crc, value))
                        m.next = following
            with m.State("PAYLOAD"):
                with m.If(tx_advance):                    # tx_data shifts (its segments' copies)
                    m.d.sync += [tx_left.eq(tx_left - 1), tx_empty.eq(tx_left == 1)]
                with m.Elif(tx_empty):
                    m.next = "CRC0"
                with m.Else():
                    m.d.comb += [tx.valid.eq(1), tx.payload.eq(tx_data[:8])]
                    with m.If(tx.ready):
                        m.d.sync += [tx_crc.eq(crc16_step(tx_crc, tx_data[:8])), tx_advance.eq(1)]
                        m.d.comb += shift_next.eq(1)
            for state, value, following in (("CRC0", tx_crc[:8], "CRC1"), ("CRC1", tx_crc[8:], "IDLE")):
                with m.State(state):
                    m.d.comb += [tx.valid.eq(1), tx.payload.eq(value)]
                    with m.If(tx.ready):
                        m.next = following
        return m
