"""FPGA board tops, host link gateware and the host side of the demo."""
