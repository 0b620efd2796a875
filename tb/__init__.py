"""cocotb testbenches, stream drivers and the runner that elaborates, builds and simulates them."""
