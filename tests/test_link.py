# amaranth: UnusedElaboratable=no
"""The host link's pieces in Amaranth's simulator and in plain Python: the CRC, the UART (loopback,
mid-bit sampling, glitches, framing errors), the frame parser (every error answer, timeouts, garbage,
busy, reset) and the transmitter (result, mask and done frames in order), and the host library's
refusal of a job made for another configuration."""

import random
from functools import partial

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from focus import FocusConfig
from focus.fpga.host import ConfigMismatch, FocusLink, LinkError, LinkTimeout
from focus.fpga.link import HostLink, crc16_step
from focus.fpga.protocol import (JOB_BYTES, VERSION, Command, ErrorCode, FrameDecoder, Identity, Reply, beat_sizes,
                                 crc16, encode_frame, identify_payload, job_payload)
from focus.fpga.uart import UartRx, UartTx, uart_divisor
from focus.hdl.util import poisoned_collisions
from focus.tb.amaranth_sim import check_stream_rules, simulate

CFG = FocusConfig(rows=4, vector_size=4, cols=4, hidden=8, out_features=8, frames=2, height=4, width=4, tile_frames=1)
DIVISOR = 8
TIMEOUT = 400


# ------------------------------------------------------------------------------------------- CRC

def test_crc16_is_ccitt_false_and_the_gateware_step_agrees():
    assert crc16(b"123456789") == 0x29B1
    rng = random.Random(0)
    crc, byte, out = Signal(16), Signal(8), Signal(16)
    m = Module()
    m.d.comb += out.eq(crc16_step(crc, byte))
    cases = [(rng.randrange(1 << 16), rng.randrange(256)) for _ in range(200)]

    async def bench(ctx):
        for c, b in cases:
            ctx.set(crc, c)
            ctx.set(byte, b)
            await ctx.delay(1e-9)
            assert ctx.get(out) == crc16(bytes([b]), c)
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_frame_decoder_skips_garbage_and_corrupt_frames():
    good = encode_frame(Reply.ACK, b"\x05")
    bad = bytearray(encode_frame(Reply.ERROR, b"\x01\x02"))
    bad[-2] ^= 0xFF
    decoder = FrameDecoder()
    frames = decoder.feed(b"\x00\x13" + bytes(bad) + good[:3])
    frames += decoder.feed(good[3:] + b"\xa5")
    assert [(f.command, f.payload) for f in frames] == [(Reply.ACK, b"\x05")]
    assert decoder.dropped == 1


# ------------------------------------------------------------------------------------------- UART

def test_divisor_rounds_and_refuses_unreachable_baud_rates():
    assert uart_divisor(48e6, 115200) == 417
    assert uart_divisor(100e6, 12.5e6) == 8
    with pytest.raises(ValueError, match="at most"):
        uart_divisor(12e6, 6e6)
    with pytest.raises(ValueError, match="off"):
        uart_divisor(1e6, 220_000)


@pytest.mark.parametrize("divisor", [5, 8, 13])
def test_uart_loopback_carries_every_byte_value(divisor):
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    sent = list(range(256)) + [random.Random(divisor).randrange(256) for _ in range(20)]
    got = []

    async def producer(ctx):
        for value in sent:
            ctx.set(tx.bytes.payload, value)
            ctx.set(tx.bytes.valid, 1)
            await ctx.tick().until(tx.bytes.ready)
        ctx.set(tx.bytes.valid, 0)

    async def consumer(ctx):
        ctx.set(rx.bytes.ready, 1)
        while len(got) < len(sent):
            _, _, valid, payload, error = await ctx.tick().sample(rx.bytes.valid, rx.bytes.payload, rx.framing_error)
            assert not error
            if valid:
                got.append(payload)

    simulate(m, [producer, consumer], [partial(check_stream_rules, port=rx.bytes)], name="uart_loopback",
             timeout_cycles=len(sent) * 12 * divisor)
    assert got == sent


async def _drive_line(ctx, line, bits_and_cycles):
    for level, cycles in bits_and_cycles:
        ctx.set(line, level)
        for _ in range(cycles):
            await ctx.tick()


def _byte_bits(value, bit_cycles, stop=1):
    return [(0, bit_cycles)] + [((value >> i) & 1, bit_cycles) for i in range(8)] + [(stop, bit_cycles)]


@pytest.mark.parametrize("skew", [-0.035, 0.0, 0.035])
def test_uart_rx_samples_mid_bit_with_a_baud_error_ignores_glitches_and_drops_framing_errors(skew):
    divisor = 50
    bit = round(divisor * (1 + skew))           # the sender's clock is 3.5 % off
    rx = UartRx(divisor)
    got, errors = [], []
    line = [(1, 40), (0, 20), (1, 40)]          # a glitch shorter than half a bit
    line += _byte_bits(0x5A, bit) + [(1, 5)] + _byte_bits(0xC3, bit)
    line += _byte_bits(0x81, bit, stop=0) + [(0, 3 * divisor), (1, 2 * divisor)]   # framing error, a break
    line += _byte_bits(0x7E, bit) + [(1, 3 * divisor)]

    async def sender(ctx):
        await _drive_line(ctx, rx.rx, line)

    async def receiver(ctx):
        ctx.set(rx.bytes.ready, 1)
        for _ in range(sum(c for _, c in line)):
            _, _, valid, payload, error = await ctx.tick().sample(rx.bytes.valid, rx.bytes.payload, rx.framing_error)
            if valid:
                got.append(payload)
            if error:
                errors.append(len(got))

    simulate(rx, [sender, receiver], name="uart_rx_skew")
    assert got == [0x5A, 0xC3, 0x7E]
    assert errors == [2]


# ------------------------------------------------------------------------------------------- link

class LinkBench:
    """A HostLink with bytes written straight to ``rx`` (one every ``gap`` cycles) and frames read
    from ``tx``; the accelerator-side inputs are sinks (ready unless stalled), the outputs sources."""

    def __init__(self, *, max_payload=64, stall=()):
        self.dut = HostLink(CFG, clk_freq=100_000_000, baud=12_500_000, divisor=DIVISOR, max_payload=max_payload,
                            frame_timeout=TIMEOUT)
        self.stall = set(stall)
        self.beats = {name: [] for name in ("command", "scores", "tokens", "weights")}
        self.resets = []
        self.decoder = FrameDecoder()
        self.frames = []
        self.cycle = 0

    async def send(self, ctx, data, gap=3):
        for value in data:
            ctx.set(self.dut.rx.payload, value)
            ctx.set(self.dut.rx.valid, 1)
            await ctx.tick()
            ctx.set(self.dut.rx.valid, 0)
            for _ in range(gap - 1):
                await ctx.tick()

    async def wait(self, ctx, cycles):
        for _ in range(cycles):
            await ctx.tick()

    async def monitor(self, ctx):
        dut = self.dut
        ctx.set(dut.tx.ready, 1)
        ports = {name: getattr(dut, name) for name in self.beats}
        async for _, _, *values in ctx.tick().sample(dut.tx.valid, dut.tx.payload, dut.accel_reset,
                                                     *[p.valid for p in ports.values()]):
            self.cycle += 1
            tx_valid, tx_byte, reset, *valids = values
            if tx_valid:
                self.frames += self.decoder.feed(bytes([tx_byte]))
            if reset:
                self.resets.append(self.cycle)
            for (name, port), valid in zip(ports.items(), valids):
                ready = name not in self.stall
                ctx.set(port.ready, ready)
                if valid and ready:
                    self.beats[name].append(ctx.get(port.payload.as_value()))

    def answers(self):
        out = [(f.command, f.payload) for f in self.frames]
        self.frames.clear()
        return out

    def run(self, script, timeout_cycles=100_000):
        simulate(self.dut, [partial(script, self)], [self.monitor], name="link", timeout_cycles=timeout_cycles)


def error(code, command):
    return (Reply.ERROR, bytes([code, command]))


def ack(command):
    return (Reply.ACK, bytes([command]))


def test_identify_answers_version_limits_and_the_configuration_digest():
    bench = LinkBench()

    async def script(b, ctx):
        await b.send(ctx, encode_frame(Command.IDENTIFY))
        await b.wait(ctx, 400)
        ident = Identity(version=VERSION, max_payload=64, clk_freq=100_000_000, baud=12_500_000, frame_timeout=TIMEOUT,
                         digest=CFG.digest())
        assert b.answers() == [(Reply.IDENTIFY, identify_payload(ident))]
    bench.run(script)


def test_uploads_deliver_whole_beats_then_acknowledge():
    sizes = beat_sizes(CFG)
    rng = random.Random(1)
    tokens = [rng.randrange(1 << sizes.bits["tokens"]) for _ in range(7)]
    weights = [rng.randrange(1 << sizes.bits["weights"]) for _ in range(3)]
    bench = LinkBench()

    async def script(b, ctx):
        await b.send(ctx, encode_frame(Command.TOKENS, b"".join(t.to_bytes(sizes.bytes["tokens"], "little")
                                                                 for t in tokens)))
        await b.wait(ctx, 200)
        await b.send(ctx, encode_frame(Command.WEIGHTS, b"".join(w.to_bytes(sizes.bytes["weights"], "little")
                                                                  for w in weights)), gap=1)
        await b.wait(ctx, 200)
        await b.send(ctx, encode_frame(Command.JOB, job_payload(5, 2, 1)))
        await b.wait(ctx, 300)
        assert b.answers() == [ack(Command.TOKENS), ack(Command.WEIGHTS), ack(Command.JOB)]
    bench.run(script)
    assert bench.beats["tokens"] == tokens and bench.beats["weights"] == weights
    assert bench.beats["command"] == [5 | 2 << (CFG.tokens.bit_length() + 1) | 1 << (CFG.tokens.bit_length() + 1 + 16)]


def test_broken_frames_get_error_answers_and_deliver_nothing():
    sizes = beat_sizes(CFG)
    bench = LinkBench(max_payload=64)

    async def script(b, ctx):
        bad_crc = bytearray(encode_frame(Command.TOKENS, bytes(sizes.bytes["tokens"])))
        bad_crc[5] ^= 4
        cases = [
            (bytes(bad_crc), [error(ErrorCode.BAD_CRC, Command.TOKENS)]),
            (encode_frame(Command.TOKENS, bytes(sizes.bytes["tokens"] + 1)), [error(ErrorCode.BAD_LENGTH, Command.TOKENS)]),
            (encode_frame(Command.SCORES, b""), [error(ErrorCode.BAD_LENGTH, Command.SCORES)]),
            (encode_frame(Command.JOB, bytes(JOB_BYTES + 1)), [error(ErrorCode.BAD_LENGTH, Command.JOB)]),
            (encode_frame(Command.RESET, b"\x00"), [error(ErrorCode.BAD_LENGTH, Command.RESET)]),
            (encode_frame(0x42, b"hello"), [error(ErrorCode.UNKNOWN, 0x42)]),
            (encode_frame(Command.JOB, job_payload(1, 0, 0)), [error(ErrorCode.BAD_VALUE, Command.JOB)]),
            (encode_frame(Command.JOB, job_payload(1, 1, 2)), [error(ErrorCode.BAD_VALUE, Command.JOB)]),
            (encode_frame(Command.JOB, job_payload(1 << 20, 1, 0)), [error(ErrorCode.BAD_VALUE, Command.JOB)]),
            # over the limit: refused at the length, the rest of the frame is skipped as garbage
            (encode_frame(Command.WEIGHTS, bytes(65)), [error(ErrorCode.BAD_LENGTH, Command.WEIGHTS)]),
            # garbage (no sync byte) after good frames: one GARBAGE answer per stretch, at its
            # first byte (after an error, as above, the stretch has had its answer)
            (encode_frame(Command.RESET) + b"\x00\x11\xff" + encode_frame(Command.RESET) + b"\x5a\x01",
             [ack(Command.RESET), error(ErrorCode.GARBAGE, 0), ack(Command.RESET), error(ErrorCode.GARBAGE, 0)]),
        ]
        for frame, expected in cases:
            await b.send(ctx, frame)
            await b.wait(ctx, 300)
            assert b.answers() == expected, frame.hex()
    bench.run(script)
    assert all(not beats for beats in bench.beats.values())
    assert len(bench.resets) == 2


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 7, 10])
def test_truncated_frame_times_out_and_the_next_frame_works(cut):
    sizes = beat_sizes(CFG)
    frame = encode_frame(Command.TOKENS, bytes(sizes.bytes["tokens"]))
    bench = LinkBench()

    async def script(b, ctx):
        await b.send(ctx, frame[:cut])
        await b.wait(ctx, TIMEOUT - 20)
        assert b.answers() == []                   # not yet
        await b.wait(ctx, 300)
        assert b.answers() == [error(ErrorCode.TIMEOUT, Command.TOKENS if cut > 1 else 0)]
        await b.send(ctx, frame)
        await b.wait(ctx, 300)
        assert b.answers() == [ack(Command.TOKENS)]
    bench.run(script)
    assert bench.beats["tokens"] == [0]


def test_frames_during_a_delivery_are_busy_and_reset_aborts_it():
    sizes = beat_sizes(CFG)
    bench = LinkBench(stall={"tokens"})

    async def script(b, ctx):
        await b.send(ctx, encode_frame(Command.TOKENS, bytes(2 * sizes.bytes["tokens"])))
        await b.wait(ctx, 100)
        assert ctx.get(b.dut.busy)
        await b.send(ctx, encode_frame(Command.WEIGHTS, bytes(sizes.bytes["weights"])))
        await b.send(ctx, encode_frame(Command.IDENTIFY))
        await b.wait(ctx, 400)
        answers = b.answers()
        assert [a[0] for a in answers] == [Reply.ERROR, Reply.IDENTIFY]
        assert answers[0] == error(ErrorCode.BUSY, Command.WEIGHTS)
        await b.send(ctx, encode_frame(Command.RESET))
        await b.wait(ctx, 200)
        assert b.answers() == [ack(Command.RESET)] and not ctx.get(b.dut.busy)
        b.stall.clear()
        await b.send(ctx, encode_frame(Command.WEIGHTS, bytes(sizes.bytes["weights"])))
        await b.wait(ctx, 300)
        assert b.answers() == [ack(Command.WEIGHTS)]
    bench.run(script)
    assert bench.beats["tokens"] == [] and bench.beats["weights"] == [0]


def test_results_mask_and_done_leave_as_frames_in_order():
    sizes = beat_sizes(CFG)
    rng = random.Random(3)
    results = [rng.randrange(1 << sizes.bits["results"]) for _ in range(5)]
    masks = [rng.randrange(1 << sizes.bits["mask"]) for _ in range(2)]
    done = rng.randrange(1 << sizes.bits["done"])
    bench = LinkBench()
    dut = bench.dut

    async def source(port, beats, ctx):
        for beat in beats:
            ctx.set(port.payload.as_value(), beat)
            ctx.set(port.valid, 1)
            await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)

    async def script(b, ctx):
        await source(dut.mask, masks, ctx)
        await source(dut.results, results, ctx)
        await source(dut.done, [done], ctx)
        await b.wait(ctx, 200)

    simulate(dut, [partial(script, bench)], [bench.monitor], name="link_tx")
    frames = bench.answers()
    assert frames == ([(Reply.MASK, m.to_bytes(sizes.bytes["mask"], "little")) for m in masks]
                      + [(Reply.RESULT, r.to_bytes(sizes.bytes["results"], "little")) for r in results]
                      + [(Reply.DONE, done.to_bytes(sizes.bytes["done"], "little"))])


@pytest.mark.parametrize("cfg", [FocusConfig(), CFG, FocusConfig(data_width=4, acc_width=12, hidden=16, vector_size=4,
                                                                   rows=4, cols=4, frames=2, height=3, width=5,
                                                                   tile_frames=1, score_width=7)])
def test_protocol_beat_sizes_equal_the_stream_layouts(cfg):
    link = HostLink(cfg, clk_freq=48_000_000, baud=115_200, divisor=417)     # raises when they differ
    assert link.sizes.bytes["done"] == 53 and link.identity.digest == cfg.digest()


def test_link_refuses_a_limit_below_one_beat():
    with pytest.raises(ValueError, match="max_payload"):
        HostLink(CFG, clk_freq=100_000_000, baud=12_500_000, divisor=8, max_payload=4)


def test_board_top_requests_the_uart_and_leds_on_an_amaranth_boards_platform():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from focus.fpga.top import BoardTop
    platform = ICEBreakerPlatform()
    plan = platform.build(BoardTop(CFG, clk_freq=int(platform.default_clk_frequency), baud=115_200), do_build=False)
    pins = plan.files["top.pcf"]
    assert "uart_0__rx__io" in pins and "uart_0__tx__io" in pins and "led_0__io" in pins


# ------------------------------------------------------------------------------------------- host

class ScriptedTransport:
    """A transport that answers IDENTIFY with a fixed identity (``before`` the answer: bytes the
    device sent first) and records what was written."""

    def __init__(self, digest, *, version=VERSION, before=b""):
        self.written = bytearray()
        self.pending = bytearray()
        self.now = 0.0
        self.identity = Identity(version, 64, 48_000_000, 115_200, 960_000, digest)
        self.before = before

    def write(self, data):
        self.written += data
        for frame in FrameDecoder().feed(bytes(data)):
            if frame.command == Command.IDENTIFY:
                self.pending += self.before + encode_frame(Reply.IDENTIFY, identify_payload(self.identity))

    @property
    def in_waiting(self):                         # as a pyserial port has it
        return len(self.pending)

    def read(self, n):
        self.now += 0.1
        out, self.pending = bytes(self.pending[:n]), self.pending[n:]
        return out

    def clock(self):
        return self.now


def test_host_refuses_a_job_for_another_configuration_before_sending_it():
    from focus.sim.job import run_job
    other = CFG.replace(threshold="19/20")
    job = run_job(other, np.zeros((other.tokens, other.hidden), np.int64), np.ones((other.hidden, 4), np.int64))
    transport = ScriptedTransport(CFG.digest())
    link = FocusLink(transport, timeout=1.0)
    with pytest.raises(ConfigMismatch, match=other.digest()):
        link.run_job(other, job, "focus")
    assert link.identity.digest == CFG.digest() and link.identity.clk_freq == 48_000_000
    commands = [f.command for f in FrameDecoder().feed(bytes(transport.written))]
    assert commands == [Command.IDENTIFY]


def test_host_passes_garbage_answers_and_takes_the_answer_to_its_frame():
    # noise reached the device before IDENTIFY: its GARBAGE answer comes first
    garbage = encode_frame(Reply.ERROR, bytes([ErrorCode.GARBAGE, 0]))
    link = FocusLink(ScriptedTransport(CFG.digest(), before=garbage + garbage), timeout=1.0)
    assert link.identify().digest == CFG.digest()
    assert link.garbage_reports == 2


def test_host_refuses_a_bitstream_of_another_link_protocol_version():
    link = FocusLink(ScriptedTransport(CFG.digest(), version=VERSION - 1), timeout=1.0)
    with pytest.raises(LinkError, match=f"protocol version {VERSION - 1}, this host version {VERSION}"):
        link.identify()


def test_host_timeout_is_a_clear_error():
    transport = ScriptedTransport(CFG.digest())
    transport.write = lambda data: None          # a board that never answers
    with pytest.raises(LinkTimeout, match="no answer to IDENTIFY"):
        FocusLink(transport, timeout=1.0).identify()


def test_board_top_lights_the_error_led_for_a_tenth_of_a_second_after_a_corrupt_frame():
    from focus.fpga.top import BoardTop
    clk_freq, baud = 4000, 500                    # 8 cycles a bit; the light stays on about clk_freq // 10 cycles
    dut = BoardTop(CFG, clk_freq=clk_freq, baud=baud)
    frame = bytearray(encode_frame(Command.IDENTIFY, b""))
    frame[-1] ^= 0x55                             # a wrong CRC: the link answers ERROR and pulses ``error``
    lit = []

    async def bench(ctx):
        ctx.set(dut.uart_rx, 1)
        await ctx.tick().repeat(40)
        assert ctx.get(dut.leds) >> 1 == 0
        await _drive_line(ctx, dut.uart_rx, [level for byte in frame for level in _byte_bits(byte, 8)])
        for _ in range(1200):
            await ctx.tick()
            lit.append(ctx.get(dut.leds) >> 1)

    simulate(dut, [bench], name="board_error_led", timeout_cycles=5000)
    on = [i for i, v in enumerate(lit) if v]
    assert on, "the error light never came on"
    # one run of clk_freq // 10 - 1 cycles: loaded with clk_freq // 10 - 1, lit while not zero
    assert on == list(range(on[0], on[0] + clk_freq // 10 - 1))


def test_deliveries_never_read_a_byte_of_the_buffer_as_it_is_written():
    """The receive buffer's reads of the byte written at the same edge are undefined on the ECP5
    builds (focus.hdl.util.CollisionFreeReadPort): with them poisoned, uploads deliver the same beats."""
    with poisoned_collisions():
        test_uploads_deliver_whole_beats_then_acknowledge()
