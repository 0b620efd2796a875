"""NumPy golden model of Focus: float reference, the integer contract (docs/semantics.md), workloads,
cycle models and test-vector export."""
