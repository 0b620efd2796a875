"""The one validated configuration of a Focus accelerator.

Every part of the project (``focus.hdl``, ``focus.sim``, ``focus.gen``, ``focus.tb``,
``focus.fpga``) takes a :class:`FocusConfig` and reads its sizes from it; nothing takes loose widths.
All validation lives in :meth:`FocusConfig.__post_init__`: a bad value raises :class:`ConfigError`
naming the field, the value and what is allowed. The configuration round-trips through JSON
losslessly (:meth:`FocusConfig.to_json` / :meth:`FocusConfig.from_json`), and
:meth:`FocusConfig.digest` names it in file names, caches and reports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any

__all__ = ["ConfigError", "FocusConfig", "CONFIG_VERSION", "REPRESENTATIVES", "LIMITS"]

#: Version of the JSON form; bumped when a field changes meaning.
CONFIG_VERSION = 1

#: Representative of a similarity group: the rounded mean of its members (the paper's average),
#: or its root (first member in stream order, no division). docs/semantics.md defines both.
REPRESENTATIVES = ("mean", "root")

#: What the generated design supports. Beyond these, an error says so rather than building something
#: nobody has verified.
LIMITS = {
    "data_width": (2, 16),
    "acc_width": (8, 64),
    "rows": (1, 256),
    "cols": (1, 256),
    "vector_size": (1, 256),
    "score_width": (1, 32),
    "sec_radix_bits": (1, 8),
    "threshold_denominator": (1, 1 << 16),
    "tokens": (1, 1 << 20),
}


class ConfigError(ValueError):
    """A configuration value is not allowed. ``field``, ``value`` and ``allowed`` are kept for tools."""

    def __init__(self, field: str, value: Any, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}={value!r} is not allowed: {allowed}")


def _as_fraction(field_name: str, value: Any) -> Fraction:
    """Accept a Fraction, an int, a "T/Q" or decimal string, or a float (taken as its shortest decimal)."""
    if isinstance(value, bool):
        raise ConfigError(field_name, value, "a rational number such as 9/10 or 0.9")
    try:
        if isinstance(value, float):
            return Fraction(repr(value))
        if isinstance(value, (int, Fraction, str)):
            return Fraction(value.strip() if isinstance(value, str) else value)
    except (ValueError, ZeroDivisionError):
        pass
    raise ConfigError(field_name, value, "a rational number such as 9/10 or 0.9")


def _bits_signed(lo: int, hi: int) -> int:
    """Width of the smallest two's-complement integer holding every value in [lo, hi]
    (what Amaranth's ``Shape.cast(range(lo, hi + 1))`` gives, without importing Amaranth here)."""
    return max(x.bit_length() if x >= 0 else (~x).bit_length() for x in (lo, hi)) + 1


@dataclass(frozen=True)
class FocusConfig:
    """Sizes and settings of one Focus accelerator and of the workloads it runs.

    Systolic array
      ``rows`` x ``cols`` processing elements, weight-stationary: a K-chunk of ``rows`` weights per
      column, an N-tile of ``cols`` columns. Concentrated GEMM feeds one SIC vector per array row,
      so ``rows`` must equal ``vector_size``. ``out_features`` is N, the output features of the GEMM
      the array computes: it makes ``array_passes = ceil(out_features / cols)`` passes over the
      unique vectors of each K-chunk (what the SIC of the next chunk has to keep pace with).
    Data
      Signed ``data_width``-bit activations and weights, signed ``acc_width``-bit accumulators, which
      must hold the widest dot product of a ``hidden``-element token with a weight column.
    Token grid
      ``frames`` x ``height`` x ``width`` image tokens of ``hidden`` elements, in raster order
      (frame, row, column). SIC groups never span tiles of ``tile_frames`` whole frames.
    Similarity concentration (SIC)
      Each token is cut into ``hidden // vector_size`` vectors. ``window`` = (frames, rows, columns)
      extent of the causal window; (2, 2, 2) gives the paper's 7 candidates. A vector joins its best
      candidate's group when the cosine similarity is above ``threshold`` (an exact rational).
      ``representative`` picks what a group computes with (see :data:`REPRESENTATIVES`).
      ``sic_multipliers`` is the comparator's throughput setting (``S = sic_slots = candidates + 1``
      dot products per vector: its own norm and one per candidate; ``V = vector_size``):
      ``P * V`` for a divisor ``P`` of ``S`` is ``P`` dot-product engines of ``V`` multipliers, ``P``
      of the slots per cycle, ``S / P`` cycles per vector (``P = S``: full rate, one vector per
      cycle); a divisor ``M`` of ``V`` is element-serial (``M`` multipliers visit the norm and the
      candidates one after another, ``S * V / M`` cycles per vector). ``sic_interval`` is
      ``S * V / sic_multipliers`` in every case. 0 (the default) picks the fewest multipliers whose
      interval keeps pace with the array on concentrated work at ``sic_pace_sparsity``:
      ``sic_interval <= array_passes * (1 - sic_pace_sparsity)``, exactly; full rate when none does.
      ``sic_pace_sparsity`` (an exact rational in [0, 1)) is the sparsity the design is sized for,
      the fraction of vectors that are similar or zero: per tile-chunk the array makes
      ``array_passes`` passes over the ``(1 - sparsity) * tile_tokens`` unique vectors while SIC
      spends ``sic_interval`` cycles on every vector, so SIC keeps pace while the input's sparsity
      does not exceed it. 0 sizes SIC for dense work.
      Defaults: ``out_features = 192 = 3 * hidden``, the fused QKV projection: a transformer layer's
      projections have N = hidden (attention output, FFN down), 3 * hidden (QKV) and 4 * hidden
      (FFN up); 3 * hidden is the real one nearest the layer's MAC-weighted mean N (2.5 * hidden).
      ``sic_pace_sparsity = 7/8``: real clips at the default threshold 9/10 with every token live
      have sparsity 0.72 to 0.85 (docs/benchmarks/sic.md), Focus on all-MiniLM-L6-v2 0.82 over all
      layers (docs/reports/minilm-bikes); 7/8 covers them. With 24 passes that gives
      ``sic_interval <= 3``: 32 multipliers, 2 cycles per vector (docs/sic.md).
    Scatter accumulator
      ``scatter_lanes`` is the number of lanes, each adding one ``cols``-wide partial row into one
      token's accumulator row per cycle (lane ``l`` owns the tile's tokens ``t`` with ``t mod L ==
      l``). Any positive integer; 0 (the default) picks it automatically: the smallest ``L`` with
      ``L >= 1 / (1 - sic_pace_sparsity)``, exactly (7/8 gives 8), at most ``tile_tokens``. Then a
      tile-chunk's non-zero tokens, about ``tile_tokens / L`` per lane, take no longer than the
      array's pass over its ``(1 - sparsity) * tile_tokens`` unique vectors.
      ``scatter_lane_count`` is the resolved value.
    Semantic concentration (SEC)
      Attention scores are unsigned ``score_width``-bit integers. At layer ``sec_layers[i]`` the
      top ``int(image_tokens * sec_alphas[i])`` tokens (at least 1) are kept. The SEC block finds
      the top k by radix select: ``sec_radix_bits``-bit digits (at most ``score_width`` are used),
      one histogram pass over the tokens per digit, ``2**sec_radix_bits`` histogram counters.
      It takes ``sec_lanes = cols`` scores per beat, as the array produces attention scores a row of
      ``cols`` at a time, and works on ``sec_words = ceil(tokens / sec_lanes)`` words of that many
      tokens: a row of scores, a histogram pass and the mask are ``sec_words`` beats or cycles each.
    """

    rows: int = 8
    cols: int = 8
    out_features: int = 192
    data_width: int = 8
    acc_width: int = 32
    hidden: int = 64
    vector_size: int = 8
    frames: int = 4
    height: int = 8
    width: int = 8
    tile_frames: int = 2
    window: tuple[int, int, int] = (2, 2, 2)
    threshold: Fraction = Fraction(9, 10)
    representative: str = "mean"
    sic_multipliers: int = 0
    sic_pace_sparsity: Fraction = Fraction(7, 8)
    scatter_lanes: int = 0
    score_width: int = 16
    sec_layers: tuple[int, ...] = (1, 2, 3, 4, 5)
    sec_alphas: tuple[Fraction, ...] = field(
        default=(Fraction(2, 5), Fraction(3, 10), Fraction(1, 5), Fraction(3, 20), Fraction(1, 10)))
    sec_radix_bits: int = 4

    # ------------------------------------------------------------------ validation

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # frozen: normalise in place

        for f in fields(self):
            if f.type in ("int", int):
                self._check_int(f.name, getattr(self, f.name))

        for name in ("rows", "cols", "vector_size", "data_width", "acc_width", "score_width", "sec_radix_bits"):
            lo, hi = LIMITS[name]
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ConfigError(name, value, f"an integer from {lo} to {hi}")
        for name in ("hidden", "frames", "height", "width", "tile_frames", "out_features"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, getattr(self, name), "a positive integer")

        if self.hidden % self.vector_size:
            raise ConfigError("vector_size", self.vector_size,
                              f"a divisor of hidden={self.hidden} (each token is cut into whole vectors)")
        if self.rows != self.vector_size:
            raise ConfigError("rows", self.rows,
                              f"equal to vector_size={self.vector_size}: each array row takes one "
                              "element of a SIC vector (one K-chunk per pass)")
        if self.frames % self.tile_frames:
            raise ConfigError("tile_frames", self.tile_frames,
                              f"a whole number of frames dividing frames={self.frames}")
        lo, hi = LIMITS["tokens"]
        if self.tokens > hi:
            raise ConfigError("frames", self.frames,
                              f"a grid of at most {hi} tokens (frames*height*width={self.tokens})")
        if self.scatter_lanes < 0:
            raise ConfigError("scatter_lanes", self.scatter_lanes,
                              "0 (automatic, from sic_pace_sparsity) or a positive number of lanes "
                              "(token rows added per cycle)")

        need = self.acc_width_needed
        if self.acc_width < need:
            raise ConfigError("acc_width", self.acc_width,
                              f"at least {need} bits: a dot product of hidden={self.hidden} signed "
                              f"{self.data_width}-bit pairs reaches {self.hidden << (2 * self.data_width - 2)}")

        window = self.window
        if isinstance(window, list):
            window = tuple(window)
        if (not isinstance(window, tuple) or len(window) != 3
                or any(isinstance(w, bool) or w not in (1, 2) for w in window) or window == (1, 1, 1)):
            raise ConfigError("window", self.window,
                              "(frames, rows, columns) extents, each 1 or 2, not all 1; (2, 2, 2) is the paper's")
        set_("window", window)

        threshold = _as_fraction("threshold", self.threshold)
        if not 0 < threshold < 1:
            raise ConfigError("threshold", self.threshold, "a rational strictly between 0 and 1")
        if threshold.denominator > LIMITS["threshold_denominator"][1]:
            raise ConfigError("threshold", self.threshold,
                              f"a denominator of at most {LIMITS['threshold_denominator'][1]} "
                              "once reduced (the comparator multiplies by Q^2)")
        set_("threshold", threshold)

        if self.representative not in REPRESENTATIVES:
            raise ConfigError("representative", self.representative, f"one of {', '.join(REPRESENTATIVES)}")

        allowed = self.sic_multiplier_settings
        if self.sic_multipliers != 0 and self.sic_multipliers not in allowed:
            v, slots = self.vector_size, self.sic_slots
            engines = ", ".join(f"{p * v}" for p in range(1, slots + 1) if slots % p == 0)
            raise ConfigError("sic_multipliers", self.sic_multipliers,
                              f"0 (auto), a divisor of vector_size={v} (element-serial) or P*{v} for P "
                              f"dividing the {slots} dot products per vector ({engines}; {allowed[-1]} is "
                              f"full rate); one of 0, {', '.join(map(str, allowed))}")

        sparsity = _as_fraction("sic_pace_sparsity", self.sic_pace_sparsity)
        if not 0 <= sparsity < 1:
            raise ConfigError("sic_pace_sparsity", self.sic_pace_sparsity,
                              "a rational in [0, 1): the fraction of similar or zero vectors SIC is sized for")
        set_("sic_pace_sparsity", sparsity)

        layers = tuple(self.sec_layers)
        for layer in layers:
            self._check_int("sec_layers", layer)
        if any(b <= a for a, b in zip(layers, layers[1:])) or any(layer < 0 for layer in layers):
            raise ConfigError("sec_layers", self.sec_layers, "strictly increasing non-negative layer indices")
        alphas = tuple(_as_fraction("sec_alphas", a) for a in self.sec_alphas)
        if len(alphas) != len(layers):
            raise ConfigError("sec_alphas", self.sec_alphas,
                              f"one keep ratio per entry of sec_layers ({len(layers)})")
        if any(not 0 < a <= 1 for a in alphas):
            raise ConfigError("sec_alphas", self.sec_alphas, "keep ratios in (0, 1]")
        set_("sec_layers", layers)
        set_("sec_alphas", alphas)

    @staticmethod
    def _check_int(name: str, value: Any):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, value, "an integer")

    # ------------------------------------------------------------------ derived sizes

    @property
    def tokens(self) -> int:
        """Image tokens in the grid."""
        return self.frames * self.height * self.width

    @property
    def sec_digit_bits(self) -> int:
        """Bits per radix-select digit in SEC: ``sec_radix_bits``, but no more than ``score_width``."""
        return min(self.sec_radix_bits, self.score_width)

    @property
    def sec_passes(self) -> int:
        """Radix-select histogram passes in SEC: ``ceil(score_width / sec_digit_bits)``."""
        return -(-self.score_width // self.sec_digit_bits)

    @property
    def sec_lanes(self) -> int:
        """Scores per beat into SEC, and tokens per word of its buffer and mask: ``cols`` (the array
        produces attention scores ``cols`` at a time)."""
        return self.cols

    @property
    def sec_words(self) -> int:
        """Words of ``sec_lanes`` tokens covering the image tokens in SEC: ``ceil(tokens / sec_lanes)``;
        lanes past ``tokens`` in the last word are padding."""
        return -(-self.tokens // self.sec_lanes)

    @property
    def frame_tokens(self) -> int:
        return self.height * self.width

    @property
    def tile_tokens(self) -> int:
        """Tokens per tile; also the largest possible similarity group."""
        return self.tile_frames * self.frame_tokens

    @property
    def tiles(self) -> int:
        return self.frames // self.tile_frames

    @property
    def chunks(self) -> int:
        """K-chunks (SIC vectors) per token."""
        return self.hidden // self.vector_size

    @property
    def data_min(self) -> int:
        return -(1 << (self.data_width - 1))

    @property
    def data_max(self) -> int:
        return (1 << (self.data_width - 1)) - 1

    @property
    def acc_width_needed(self) -> int:
        """Signed bits for the widest dot product of ``hidden`` signed ``data_width``-bit pairs."""
        return self.dot_width(self.hidden)

    def dot_width(self, terms: int) -> int:
        """Signed bits that hold any sum of ``terms`` products of two signed ``data_width`` values."""
        lo, hi = self.data_min, self.data_max
        return _bits_signed(terms * lo * hi, terms * lo * lo)

    @property
    def candidates(self) -> tuple[tuple[int, int, int, int], ...]:
        """SIC candidates as (index, df, dh, dw), index = df*4 + dh*2 + dw, in index order.

        Candidate ``index`` of the vector at (f, h, w) sits at (f - df, h - dh, w - dw).
        """
        wf, wh, ww = self.window
        return tuple((df * 4 + dh * 2 + dw, df, dh, dw)
                     for df in range(wf) for dh in range(wh) for dw in range(ww)
                     if (df, dh, dw) != (0, 0, 0))

    @property
    def candidate_offsets(self) -> tuple[int, ...]:
        """Raster-order distance of each candidate of :attr:`candidates` (index order): candidate
        ``(df, dh, dw)`` of token ``t`` is token ``t - (df*height*width + dh*width + dw)`` of the
        flat sequence (whether it is present is a separate question: image edges, tiles)."""
        return tuple(df * self.frame_tokens + dh * self.width + dw for _, df, dh, dw in self.candidates)

    @property
    def array_passes(self) -> int:
        """Passes the array makes over a K-chunk's unique vectors: ``ceil(out_features / cols)``."""
        return -(-self.out_features // self.cols)

    @property
    def scatter_lane_count(self) -> int:
        """Lanes of the scatter accumulator (``scatter_lanes`` with 0 resolved): the smallest ``L``
        with ``L >= 1 / (1 - sic_pace_sparsity)``, exact in rationals, but no more than
        ``tile_tokens`` (more lanes than tokens would idle)."""
        if self.scatter_lanes:
            return self.scatter_lanes
        need = Fraction(1) / (1 - self.sic_pace_sparsity)
        return max(1, min(-(-need.numerator // need.denominator), self.tile_tokens))

    @property
    def sic_slots(self) -> int:
        """Dot products SIC computes per vector: its own norm and one per candidate."""
        return len(self.candidates) + 1

    @property
    def sic_multiplier_settings(self) -> tuple[int, ...]:
        """Allowed explicit ``sic_multipliers``, ascending: the divisors of ``vector_size``
        (element-serial), then ``P * vector_size`` for every divisor ``P > 1`` of ``sic_slots``
        (``P`` engines); the last is full rate."""
        v, slots = self.vector_size, self.sic_slots
        return (*(m for m in range(1, v + 1) if v % m == 0),
                *(p * v for p in range(2, slots + 1) if slots % p == 0))

    @property
    def sic_lanes(self) -> int:
        """Multipliers of the SIC comparator (``sic_multipliers`` with 0 resolved): the fewest whose
        interval is at most ``array_passes * (1 - sic_pace_sparsity)``, else full rate."""
        if self.sic_multipliers:
            return self.sic_multipliers
        budget = self.array_passes * (1 - self.sic_pace_sparsity)
        for m in self.sic_multiplier_settings:
            if self.sic_slots * self.vector_size // m <= budget:
                return m
        return self.sic_multiplier_settings[-1]

    @property
    def sic_engines(self) -> int:
        """Dot products the SIC comparator works on at once: ``sic_lanes / vector_size`` engines of
        ``vector_size`` multipliers, or 1 element-serial engine (``sic_lanes`` divides ``vector_size``)."""
        return max(1, self.sic_lanes // self.vector_size)

    @property
    def sic_full_rate(self) -> bool:
        """True when the comparator takes one vector per cycle (all dot products in parallel)."""
        return self.sic_lanes == self.sic_slots * self.vector_size

    @property
    def sic_interval(self) -> int:
        """Initiation interval of the SIC comparator, cycles per vector: ``sic_slots * vector_size /
        sic_lanes``."""
        return self.sic_slots * self.vector_size // self.sic_lanes

    @property
    def sic_mean_lanes(self) -> int:
        """Elements per cycle of SIC's representative unit: the fewest that keep pace with
        ``sic_interval`` (a divisor of ``vector_size``)."""
        v = self.vector_size
        return next(lanes for lanes in range(1, v + 1) if v % lanes == 0 and v // lanes <= self.sic_interval)

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form: fractions as "T/Q" strings, tuples as lists."""
        out: dict[str, Any] = {"config_version": CONFIG_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Fraction):
                value = f"{value.numerator}/{value.denominator}"
            elif isinstance(value, tuple):
                value = [f"{v.numerator}/{v.denominator}" if isinstance(v, Fraction) else v for v in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FocusConfig":
        if not isinstance(data, dict):
            raise ConfigError("config", data, "a JSON object of configuration fields")
        data = dict(data)
        version = data.pop("config_version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise ConfigError("config_version", version, f"{CONFIG_VERSION} (this version of focus)")
        names = {f.name for f in fields(cls)}
        for key in data:
            if key not in names:
                raise ConfigError(key, data[key], f"a known field ({', '.join(sorted(names))})")
        for key in ("window", "sec_layers", "sec_alphas"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return cls(**data)

    def to_json(self, indent: int | None = None) -> str:
        """Canonical JSON (sorted keys): equal configurations give equal text."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "FocusConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError("config", text[:60], f"valid JSON ({err})") from None
        return cls.from_dict(data)

    def digest(self) -> str:
        """Short stable name of this configuration (SHA-256 of the canonical JSON, 12 hex digits)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def replace(self, **changes: Any) -> "FocusConfig":
        """A copy with ``changes`` applied, validated again."""
        return dataclasses.replace(self, **changes)

    def with_overrides(self, assignments: list[str]) -> "FocusConfig":
        """Apply ``FIELD=VALUE`` strings (as given to ``--set`` on the command line).

        Integers are parsed as integers, ``threshold`` and alphas as fractions ("9/10" or "0.9"),
        tuples as comma-separated lists.
        """
        changes: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(self)}
        for item in assignments:
            name, sep, text = item.partition("=")
            name = name.strip()
            if not sep:
                raise ConfigError("--set", item, "FIELD=VALUE")
            if name not in types:
                raise ConfigError(name, text, f"a known field ({', '.join(sorted(types))})")
            kind = str(types[name])
            if kind == "int":
                try:
                    changes[name] = int(text, 0)
                except ValueError:
                    raise ConfigError(name, text, "an integer") from None
            elif kind.startswith("tuple"):
                parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
                if name == "sec_alphas":
                    changes[name] = tuple(parts)
                else:
                    try:
                        changes[name] = tuple(int(p, 0) for p in parts)
                    except ValueError:
                        raise ConfigError(name, text, "comma-separated integers") from None
            else:
                changes[name] = text.strip()
        try:
            return self.replace(**changes)
        except ConfigError as err:
            raise self._blame_changed(err, changes) from None

    def _blame_changed(self, err: ConfigError, changes: dict[str, Any]) -> ConfigError:
        """A cross-field error that names a field the assignments left alone, restated for the field
        they changed (``hidden=63 is not allowed: a multiple of vector_size=8``); else ``err``."""
        new = {**self.to_dict(), **changes}
        restated = {
            # error on this field -> (the partner that was changed, what the partner must be)
            "vector_size": ("hidden", lambda: f"a multiple of vector_size={new['vector_size']} "
                                              "(each token is cut into whole vectors)"),
            "rows": ("vector_size", lambda: f"equal to rows={new['rows']}: each array row takes one element of a "
                                            "SIC vector (set both: --set rows=N --set vector_size=N)"),
            "tile_frames": ("frames", lambda: f"a multiple of tile_frames={new['tile_frames']} "
                                              "(tiles are whole frames)"),
        }
        if err.field in changes or err.field not in restated:
            return err
        partner, allowed = restated[err.field]
        if partner not in changes:
            return err
        try:
            value = int(changes[partner])
        except (TypeError, ValueError):
            return err
        return ConfigError(partner, value, allowed())
