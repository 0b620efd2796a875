"""The board top: the Focus accelerator behind a UART host link.

::

    uart_rx ─► UartRx ─► HostLink ─► command, scores, tokens, weights ─► slices ─► FocusAccelerator
    uart_tx ◄─ UartTx ◄─ HostLink ◄─ mask, results, done ◄──────────────── slices ◄──┘
                              └─ accel_reset (RESET frames) ─► register ─► the accelerator's
                                                                          and the slices' reset

(slices: one :class:`~focus.hdl.streams.StreamRegister` per stream)

One clock, ``sync``'s. The accelerator and the slices run in a local domain ``accel`` on that clock
whose reset is one flip-flop, set while ``sync`` is in reset and the cycle after a RESET frame
(on a board, through a global buffer: :func:`focus.fpga.clocks.global_buffer`). In simulation (no platform, or a platform without a ``uart``
resource) the UART lines are the ports ``uart_rx`` and ``uart_tx``, the LEDs ``leds``. On an
amaranth-boards platform the top requests ``uart`` 0 and up to two ``led`` pins (``dir="-"``,
wrapped in ``io.Buffer``) and takes the platform's default clock; ``clk_freq`` must then be that
clock's frequency (a PLL in front is the board build's business).
"""

from __future__ import annotations

from amaranth.build import ResourceError
from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Module, ResetSignal, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from ..hdl.accelerator import FocusAccelerator
from ..hdl.streams import StreamRegister
from .clocks import global_buffer
from .link import HostLink
from .protocol import DEFAULT_MAX_PAYLOAD
from .uart import UartRx, UartTx, uart_divisor

__all__ = ["BoardTop", "DEFAULT_BAUD", "DEFAULT_CLK_FREQ"]

DEFAULT_CLK_FREQ = 48_000_000
DEFAULT_BAUD = 115_200


class BoardTop(wiring.Component):
    """The accelerator, its host link and a UART at ``baud`` on a ``clk_freq`` clock.

    Ports (simulation): ``uart_rx`` In(1) (idle high), ``uart_tx`` Out(1), ``leds`` Out(2): bit 0
    lights while the link delivers an upload to the accelerator, bit 1 for about 0.1 s after an
    error response. ``frame_timeout`` (clock cycles; default 20 ms, at least 64 byte times) and
    ``max_payload`` (bytes) go to :class:`~focus.fpga.link.HostLink`. ``family`` (a board build's
    FPGA family, ``None`` in simulation) picks the global buffer of the accelerator's reset;
    ``reset_bel`` its site (:func:`focus.fpga.clocks.global_buffer`).
    """

    def __init__(self, cfg: FocusConfig, *, clk_freq: int = DEFAULT_CLK_FREQ, baud: int = DEFAULT_BAUD,
                 max_payload: int = DEFAULT_MAX_PAYLOAD, frame_timeout: int | None = None,
                 family: str | None = None, reset_bel: str | None = None):
        self.cfg, self.family, self.reset_bel = cfg, family, reset_bel
        self.clk_freq, self.baud = int(clk_freq), int(baud)
        self.divisor = uart_divisor(self.clk_freq, self.baud)
        self.max_payload, self.frame_timeout = max_payload, frame_timeout
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "leds": Out(2)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = rx = UartRx(self.divisor)
        m.submodules.uart_tx = tx = UartTx(self.divisor)
        m.submodules.link = link = HostLink(self.cfg, clk_freq=self.clk_freq, baud=self.baud, divisor=self.divisor,
                                            max_payload=self.max_payload, frame_timeout=self.frame_timeout)
        # The accelerator's reset reaches every one of its flip-flops (over 11,000 at the default
        # configuration): it leaves a flip-flop, so it is one net, not the tail of the link's
        # frame decoding, and it is the whole reset of the ``accel`` domain (held while ``sync`` is
        # in reset: its initial value), so no gate ORs two resets in front of every group of
        # flip-flops. The accelerator is reset the cycle after the RESET frame's last byte; the
        # link has abandoned its delivery by then and sends the frame's ACK before it takes any
        # output beat again.
        accel_reset = Signal(init=1)
        m.d.sync += accel_reset.eq(link.accel_reset)
        m.domains.accel = ClockDomain("accel", local=True)
        reset = (accel_reset if self.family is None
                 else global_buffer(m, self.family, accel_reset, "accel_reset", self.reset_bel))
        m.d.comb += [ClockSignal("accel").eq(ClockSignal("sync")), ResetSignal("accel").eq(reset)]
        m.submodules.accelerator = accel = DomainRenamer("accel")(FocusAccelerator(self.cfg))
        wiring.connect(m, rx.bytes, link.rx)
        wiring.connect(m, link.tx, tx.bytes)
        # A register slice on every stream between the link and the accelerator: the link's frame
        # decoding and the accelerator's stream control (the array's weight shift enable reaches
        # 512 flip-flops) are then never one combinational path. The slices are reset with the
        # accelerator, so no beat of an abandoned job survives a RESET frame.
        for name, into_accelerator in (("command", True), ("scores", True), ("tokens", True), ("weights", True),
                                       ("mask", False), ("results", False), ("done", False)):
            source, sink = (link, accel) if into_accelerator else (accel, link)
            port = getattr(source, name)
            m.submodules[f"{name}_slice"] = slice_ = DomainRenamer("accel")(StreamRegister(port.payload.shape()))
            wiring.connect(m, port, slice_.input)
            wiring.connect(m, slice_.output, getattr(sink, name))

        light_cycles = max(self.clk_freq // 10, 2)
        error_light = Signal(range(light_cycles))
        # the link's error pulse is registered first: it comes out of the frame parser's CRC and
        # length compares, which reached the light's count through its load select late on an
        # 85 MHz ULX3S-85F build (11.94 ns)
        error_seen = Signal()
        m.d.sync += error_seen.eq(link.error)
        with m.If(error_seen):
            m.d.sync += error_light.eq(light_cycles - 1)
        with m.Elif(error_light != 0):
            m.d.sync += error_light.eq(error_light - 1)
        leds = Signal(2)
        m.d.comb += [leds[0].eq(link.busy), leds[1].eq(error_light != 0)]

        pins = None
        if platform is not None:
            try:
                pins = platform.request("uart", 0, dir="-")
            except (ResourceError, AttributeError):
                pins = None
        if pins is None:
            m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx), self.leds.eq(leds)]
            return m
        m.submodules.uart_rx_buffer = rx_buffer = io.Buffer("i", pins.rx)
        m.submodules.uart_tx_buffer = tx_buffer = io.Buffer("o", pins.tx)
        m.d.comb += [rx.rx.eq(rx_buffer.i), tx_buffer.o.eq(tx.tx)]
        for index in range(2):
            try:
                led = platform.request("led", index, dir="-")
            except ResourceError:
                break
            m.submodules[f"led_{index}_buffer"] = buffer = io.Buffer("o", led)
            m.d.comb += buffer.o.eq(leds[index])
        return m
