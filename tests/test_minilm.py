"""focus.sim.minilm: the trained all-MiniLM-L6-v2 in NumPy, dense and with Focus."""

import subprocess
import sys

import numpy as np
import pytest

from focus import FocusConfig
from focus.sim import minilm, sec
from focus.sim.checks import InputError
from focus.sim.job import run_job

CFG = FocusConfig(frames=2, height=4, width=4, tile_frames=2, hidden=384, vector_size=32, rows=32,
                  sec_layers=(1, 3), sec_alphas=("1/2", "1/4"))


def _cos(a, b):
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_numpy_model_reproduces_the_published_sentence_similarities():
    # sbert.net, "Usage" (docs/sentence_transformer/usage/usage.html): all-MiniLM-L6-v2 similarities
    # 0.6660, 0.1046, 0.1411 for these three sentences (printed to 4 decimals).
    e = [minilm.sentence_embedding(t) for t in
         ("The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.")]
    got = [e[0] @ e[1], e[0] @ e[2], e[1] @ e[2]]
    assert np.allclose(got, [0.6660, 0.1046, 0.1411], atol=6e-5)


def test_loading_weights_and_tokenizer_imports_no_torch():
    code = ("import sys; from focus.sim import minilm; m = minilm.load_model(); "
            "assert m.layers == 6 and m.hidden == 384 and m.heads == 12; "
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'transformers', 'sentence_transformers')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def bikes():
    x, n_text, video = minilm.embed(CFG, "bikes")
    return x, n_text


def test_attention_scores_are_unsigned_codes_of_text_to_image_probabilities(bikes):
    scores = minilm.attention_scores(CFG, "bikes", layer=2)
    n_text = len(minilm.prompt_ids(minilm.DEFAULT_PROMPT))
    assert scores.shape == (12, n_text, CFG.tokens) and scores.dtype == np.int64
    top = (1 << CFG.score_width) - 1
    assert scores.min() >= 0 and scores.max() <= top
    # each text row's probabilities over the whole sequence sum to 1: image codes sum to at most that
    assert (scores.sum(axis=2) <= top + CFG.tokens / 2).all() and scores.sum() > 0
    narrow = minilm.attention_scores(CFG.replace(score_width=4), "bikes", layer=2)
    assert narrow.max() <= 15
    assert not np.array_equal(scores, minilm.attention_scores(CFG, "bikes", layer=0))


def test_int8_run_stays_close_to_the_float_model(bikes):
    x, n_text = bikes
    f, i = minilm.run(CFG, x, n_text, "float"), minilm.run(CFG, x, n_text, "int8")
    assert _cos(f.hidden, i.hidden).min() > 0.95
    assert not np.array_equal(f.hidden, i.hidden)


@pytest.mark.parametrize("vector_size,sites", [(64, minilm.SITES), (32, ("query",))])
def test_focus_without_any_merge_equals_the_int8_run_exactly(vector_size, sites):
    cfg = CFG.replace(threshold="65535/65536", vector_size=vector_size, rows=vector_size)
    x, n_text, _ = minilm.embed(cfg, "random")
    focus = minilm.run(cfg, x, n_text, "focus", sec=False, sites=sites)
    assert {s.site for s in focus.sites} == set(sites) - ({"query"} if vector_size == 64 else set())
    assert all(s.counters["similar"] == 0 and s.counters["zero"] == 0 for s in focus.sites)   # precondition
    assert np.array_equal(focus.hidden, minilm.run(cfg, x, n_text, "int8").hidden)


def test_focus_records_every_site_with_consistent_macs(bikes):
    x, n_text = bikes
    r = minilm.run(CFG, x, n_text, "focus", sec=False)
    assert [(s.layer, s.site) for s in r.sites] == [(l, s) for l in range(6) for s in minilm.SITES]
    for s in r.sites:
        assert s.concentrated_macs == s.counters["unique"] * CFG.vector_size * s.outputs
        assert s.dense_macs == CFG.tokens * s.inputs * s.outputs
        assert 0 <= s.sparsity <= 1 and s.sic is not None
    assert {s.inputs for s in r.sites if s.site == "ffn_down"} == {1536}
    assert sum(s.counters["similar"] for s in r.sites) > 0


def test_sec_keeps_the_scheduled_counts_and_each_kept_set_shrinks(bikes):
    x, n_text = bikes
    r = minilm.run(CFG, x, n_text, "focus")
    assert sorted(r.kept) == [1, 3]
    assert len(r.kept[1]) == sec.keep_count(CFG.tokens, CFG.sec_alphas[0]) == 16
    assert len(r.kept[3]) == 8 and set(r.kept[3]) <= set(r.kept[1])
    assert np.array_equal(r.rows, np.r_[np.arange(n_text), n_text + r.kept[3]])
    assert r.hidden.shape == (n_text + 8, 384)
    # SEC at layer L acts after L's attention block: its FFN and every later site see fewer tokens,
    # and the dropped ones are zero vectors in the SIC grid.
    alive_before = {0: 32, 1: 32, 2: 16, 3: 16, 4: 8, 5: 8}
    alive_after = {0: 32, 1: 16, 2: 16, 3: 8, 4: 8, 5: 8}
    for s in r.sites:
        alive = (alive_after if s.site.startswith("ffn") else alive_before)[s.layer]
        assert s.alive == alive
        assert s.counters["zero"] >= (CFG.tokens - alive) * (s.inputs // CFG.vector_size)


def test_query_side_sic_is_skipped_with_a_note_when_the_vector_does_not_divide_the_head():
    cfg = CFG.replace(vector_size=64, rows=64)
    x, n_text, _ = minilm.embed(cfg, "bikes")
    r = minilm.run(cfg, x, n_text, "focus", sec=False)
    assert "query" not in {s.site for s in r.sites}
    assert any("query-side SIC off" in n for n in r.notes if isinstance(n, str))


def test_gemm_inputs_are_the_int8_image_rows_of_that_gemm():
    grid, W, scale = minilm.gemm_inputs(CFG, "bikes", layer=1, site="ffn_down")
    assert grid.shape == (CFG.tokens, 1536) and W.shape == (1536, 384)
    assert grid.min() >= -128 and grid.max() <= 127 and max(-grid.min(), grid.max()) == 127 and scale > 0
    job = run_job(CFG.replace(hidden=1536), grid, W)
    assert np.array_equal(job.outputs_dense, grid @ W)


@pytest.mark.parametrize("call,match", [
    (lambda: minilm.embed(CFG.replace(frames=32, tile_frames=2), "bikes"), "exceed MiniLM's 512 positions"),
    (lambda: minilm.attention_scores(CFG, "bikes", layer=6), "layer=6 is not allowed: a MiniLM layer from 0 to 5"),
    (lambda: minilm.prompt_ids("  "), "a non-empty text"),
    (lambda: minilm.layer_weights(CFG, 0, "lm_head"), "site='lm_head' is not allowed"),
])
def test_bad_workload_requests_are_rejected_clearly(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_sec_layer_beyond_the_model_is_rejected(bikes):
    x, n_text = bikes
    with pytest.raises(InputError, match="sec_layers holds 6, but MiniLM has layers 0..5"):
        minilm.run(CFG.replace(sec_layers=(6,), sec_alphas=("1/2",)), x, n_text, "focus")
