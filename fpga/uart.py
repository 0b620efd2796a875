"""8N1 UART receiver and transmitter (one start bit, 8 data bits LSB first, no parity, one stop bit).

Both count ``divisor = round(clk_freq / baud)`` clock cycles per bit (:func:`uart_divisor`, at
least 4, within 2 % of the asked-for baud rate).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import cdc, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["uart_divisor", "UartRx", "UartTx"]


def uart_divisor(clk_freq: float, baud: float) -> int:
    """Clock cycles per bit; raises ``ValueError`` when the clock cannot make the baud rate within 2 %."""
    if clk_freq <= 0 or baud <= 0:
        raise ValueError(f"clk_freq={clk_freq} and baud={baud} must be positive")
    divisor = round(clk_freq / baud)
    if divisor < 4:
        raise ValueError(f"baud={baud} is not allowed: at most clk_freq / 4 = {clk_freq / 4:g}")
    error = abs(clk_freq / divisor - baud) / baud
    if error > 0.02:
        raise ValueError(f"baud={baud} is not allowed with clk_freq={clk_freq:g}: the nearest divisor {divisor} "
                         f"is {error:.1%} off (at most 2 %)")
    return divisor


class UartRx(wiring.Component):
    """UART receiver.

    ``rx`` (the line, idle high) passes a two-flop synchroniser; a low level starts a byte, checked
    again at the middle of the start bit (a shorter glitch is ignored); each data bit and the stop
    bit are sampled at their middle, ``divisor`` cycles apart. ``bytes`` carries each byte whose stop
    bit was high, ``divisor / 2 + 3`` cycles or so after the stop bit's middle at the latest; the
    beat waits for ``ready``, and a byte that completes while the previous one still waits is lost
    (``overrun`` is high for one cycle). A low stop bit drops the byte (``framing_error`` for one
    cycle) and the receiver waits for the line to go high again (a break holds it there).

    Reset: synchronous; forgets the byte in progress and the pending one.
    """

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor={divisor} is not allowed: at least 4")
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "bytes": Out(stream.Signature(8)),
            "framing_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = cdc.FFSynchronizer(self.rx, line, init=1, stages=2)
        timer = Signal(range(self.divisor))
        bit = Signal(range(8))
        shift = Signal(8)
        out = self.bytes
        with m.If(out.valid & out.ready):
            m.d.sync += out.valid.eq(0)
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.FSM(name="rx_state"):
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(line):
                        m.next = "IDLE"                  # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(self.divisor - 1), bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(self.divisor - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(line):
                        with m.If(out.valid & ~out.ready):
                            m.d.comb += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [out.payload.eq(shift), out.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += self.framing_error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """UART transmitter: each beat of ``bytes`` goes out on ``tx`` (idle high) as a start bit, its 8
    bits LSB first and a stop bit, ``divisor`` cycles each; ``bytes.ready`` is high while idle, so
    back-to-back beats leave no gap. Reset: synchronous; cuts a byte short (the line goes high).
    """

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor={divisor} is not allowed: at least 4")
        self.divisor = divisor
        super().__init__({
            "bytes": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        left = Signal(range(11))                  # bits still to send, the current one included
        shift = Signal(10, init=1)                # bit 0 is on the line
        line = Signal(init=1)
        m.d.comb += [self.tx.eq(line), self.bytes.ready.eq(left == 0)]
        with m.If(self.bytes.valid & self.bytes.ready):
            m.d.sync += [shift.eq(Cat(0, self.bytes.payload, 1)), left.eq(10), timer.eq(self.divisor - 1),
                         line.eq(0)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], 1)), left.eq(left - 1), timer.eq(self.divisor - 1),
                             line.eq(Mux(left == 1, 1, shift[1]))]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m

