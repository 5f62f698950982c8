"""Language models as they are served: causal and sliding-window attention, grouped-query KV
caches, mixture of experts, prefill and decode steps and whole generation requests, each against
a closed form written here by hand."""
import json

import numpy as np
import pytest

import opcount
from hardware_profiles import load
from opcount import generation
from opcount._shapes import attention_geometry


def tiny_config(tmp_path, name="tiny", **fields):
    config = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 8,
              "num_key_value_heads": 2, "num_hidden_layers": 3, "vocab_size": 50, "max_position_embeddings": 256,
              "torch_dtype": "bfloat16"}
    config.update(fields)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    return str(path)


def count(source, profile, **kw):
    batch = kw.pop("batch", 1)
    return opcount.count_model(opcount.load_model(source, **kw), profile, batch=batch)


def stage_totals(result):
    return result.totals["forward"], result.macs


# --- attention geometry ---------------------------------------------------------------------------

@pytest.mark.parametrize("t, offset, window", [(1, 0, None), (5, 0, None), (7, 3, None), (1, 40, None),
                                               (9, 0, 4), (6, 2, 3), (1, 10, 4), (1, 2, 8), (12, 30, 5)])
def test_attention_geometry_against_a_loop(t, offset, window):
    s = offset + t
    seen = [[j for j in range(s) if j <= offset + i and (window is None or j > offset + i - window)]
            for i in range(t)]
    pairs = sum(len(row) for row in seen)
    cols = len({j for row in seen for j in row})
    assert attention_geometry(t, s, causal=True, offset=offset, window=window) == (t, pairs, cols)
    assert attention_geometry(t, s, causal=False) == (t, t * s, s)


def test_causal_prefill_is_the_lower_triangle_of_dense(profile):
    p, d, heads = 12, 16, 4

    def core(causal):
        layer = opcount.count_model(opcount.load_model({"input": [p, d], "layers": [
            {"type": "attention", "heads": heads, "bias": False, "causal": causal}]}), profile).layers[0]
        return layer.macs["forward"] - 4 * p * d * d            # minus the four projections

    dense, causal = core(False), core(True)
    assert dense == 2 * p * p * d
    assert causal * p * p == dense * (p * (p + 1) // 2)         # (P(P+1)/2) / P^2 of dense, exactly


def test_causal_sdpa_matches_torch_flop_counter_plus_the_upper_triangle():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    heads, t, hd, batch = 3, 10, 8, 2
    q = torch.empty(batch, heads, t, hd, device="meta")
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    model = opcount.load_model({"input": [heads, t, hd], "layers": [
        {"type": "sdpa", "inputs": ["input", "input", "input"], "causal": True}]})
    ours = opcount.count_model(model, load("cmos-generic"), batch=batch).flops
    # FlopCounterMode prices SDPA dense whatever is_causal says; ours keeps the t(t+1)/2 entries
    upper = batch * heads * (t * t - t * (t + 1) // 2) * 2 * hd
    assert ours + 2 * upper == counter.get_total_flops()


def test_llama_like_projections_match_torch_flop_counter_on_meta_tensors(tmp_path, profile):
    """A small LLaMA-style decoder written in torch (GQA, RoPE as its ops, gated MLP, causal SDPA)
    on meta tensors: every product but the attention core equals our count; the core differs by
    the upper triangle FlopCounterMode counts."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    nn, F = torch.nn, torch.nn.functional
    d, ffn, heads, kv_heads, depth, vocab, t, batch = 64, 96, 8, 2, 3, 50, 11, 2
    hd = d // heads

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k = nn.Linear(d, d, bias=False), nn.Linear(d, kv_heads * hd, bias=False)
            self.v, self.o = nn.Linear(d, kv_heads * hd, bias=False), nn.Linear(d, d, bias=False)
            self.gate, self.up = nn.Linear(d, ffn, bias=False), nn.Linear(d, ffn, bias=False)
            self.down = nn.Linear(ffn, d, bias=False)

        def forward(self, x):
            q = self.q(x).view(batch, t, heads, hd).transpose(1, 2)
            k = self.k(x).view(batch, t, kv_heads, hd).transpose(1, 2).repeat_interleave(heads // kv_heads, 1)
            v = self.v(x).view(batch, t, kv_heads, hd).transpose(1, 2).repeat_interleave(heads // kv_heads, 1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(batch, t, d)
            x = x + self.o(a)
            return x + self.down(F.silu(self.gate(x)) * self.up(x))

    with torch.device("meta"):
        embed, blocks, head = nn.Embedding(vocab, d), nn.ModuleList(Block() for _ in range(depth)), nn.Linear(d, vocab, bias=False)
        ids = torch.zeros(batch, t, dtype=torch.long)
        with FlopCounterMode(display=False) as counter:
            x = embed(ids)
            for block in blocks:
                x = block(x)
            head(x)
    source = tiny_config(tmp_path, hidden_size=d, intermediate_size=ffn, num_attention_heads=heads,
                         num_key_value_heads=kv_heads, num_hidden_layers=depth, vocab_size=vocab)
    ours = count(source, profile, seq=t, batch=batch).flops
    upper = depth * batch * heads * (t * t - t * (t + 1) // 2) * 2 * hd
    assert ours + 2 * upper == counter.get_total_flops()


# --- decode steps -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["llama2-7b", "llama2-70b", "mistral-7b"])
def test_decode_macs_are_projections_plus_attention_over_the_cache(name, profile):
    cache = 1000
    model = opcount.load_model(f"zoo:{name}", seq=1, past=cache, kv_cache=True, logits="last")
    result = opcount.count_model(model, profile)
    d = model.layers[0].attrs["dim"]
    attention = [layer for layer in model.layers if layer.type == "attention"]
    a = attention[0].attrs
    window = a["window"] or cache + 1
    # projections: each weight of a product used once for the one token: MACs = those parameters
    weights = sum(layer.params for layer in model.layers if layer.type in ("linear", "attention"))
    by_name = {layer.name: layer for layer in result.layers}
    core = sum(by_name[layer.name].macs["forward"] for layer in attention) - sum(
        layer.params for layer in attention)
    assert result.macs - core == weights
    # attention: QK^T and PV over the min(L + 1, W) keys the query sees (the cache and itself),
    # hd each per head: 2 * keys * d per layer
    assert core == len(attention) * 2 * min(cache + 1, window) * d


def prefill_decode(source, profile, length, logits):
    def one(seq, past=0):
        model = opcount.load_model(source, seq=seq, past=past, kv_cache=True, logits=logits)
        return opcount.count_model(model, profile)
    return one(length), one(1, length), one(length + 1)


def totals_and_macs(result):
    return {op: result.totals["all"][op] for op in opcount.BASIC_OPS}, result.macs


@pytest.mark.parametrize("fields", [{}, {"model_type": "mistral", "sliding_window": 5},
                                    {"model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2}])
def test_decode_plus_prefill_is_the_longer_prefill(tmp_path, profile, fields):
    source = tiny_config(tmp_path, **fields)
    length = 9
    # LM head on every position: the cache saves exactly the recomputation, nothing else differs
    short, step, longer = prefill_decode(source, profile, length, "all")
    (a, ma), (b, mb), (c, mc) = totals_and_macs(short), totals_and_macs(step), totals_and_macs(longer)
    assert {op: a[op] + b[op] for op in a} == c and ma + mb == mc
    # serving computes the head on the last position: the two prefills and the step each run it
    # once, so the sum has exactly one head row more (a 64 -> 50 product, 64 mul, 63 add per row)
    short, step, longer = prefill_decode(source, profile, length, "last")
    (a, ma), (b, mb), (c, mc) = totals_and_macs(short), totals_and_macs(step), totals_and_macs(longer)
    extra = {op: a[op] + b[op] - c[op] for op in a}
    assert extra == {"add": 50 * 63, "sub": 0, "mul": 50 * 64, "div": 0, "sqrt": 0, "cmp": 0}
    assert ma + mb - mc == 50 * 64


def test_sliding_window_decode_cost_stops_growing(tmp_path, profile):
    source = tiny_config(tmp_path, model_type="mistral", sliding_window=6)
    costs = [count(source, profile, seq=1, past=cache).macs for cache in range(2, 12)]
    steps = np.diff(costs)
    assert (steps[:3] > 0).all() and (steps[4:] == 0).all()   # keys = min(L + 1, 6): L = 5 reaches it


def test_gqa_shrinks_the_kv_cache_by_heads_over_kv_heads(tmp_path, profile):
    full = tiny_config(tmp_path, name="mha", num_key_value_heads=8)
    grouped = tiny_config(tmp_path, name="gqa", num_key_value_heads=2)
    one = tiny_config(tmp_path, name="mqa", num_key_value_heads=1)
    runs = {name: generation.count_generation(src, profile, prompt=20, new_tokens=10, batch=3)
            for name, src in (("mha", full), ("gqa", grouped), ("mqa", one))}
    assert runs["mha"].kv_cache_bytes == 4 * runs["gqa"].kv_cache_bytes == 8 * runs["mqa"].kv_cache_bytes
    # by hand: 3 layers x (K and V: 2 x 8 heads x 8 dims) x 2 bytes (bf16) x 29 tokens held x 3 sequences
    assert runs["mha"].kv_cache_bytes == 3 * 2 * 64 * 2 * 29 * 3
    assert runs["mha"].kv_write_prefill == 3 * 2 * 64 * 2 * 20 * 3
    assert list(runs["mha"].kv_read) == [3 * 2 * 64 * 2 * cache * 3 for cache in range(20, 29)]
    np.testing.assert_array_equal(runs["mha"].kv_read, 8 * runs["mqa"].kv_read)


def test_kv_cache_bytes_in_the_movement_model(tmp_path, profile):
    source = tiny_config(tmp_path)
    horowitz = load("horowitz45")
    model = opcount.load_model(source, seq=1, past=30, kv_cache=True, logits="last")
    mv = opcount.count_movement(opcount.count_model(model, horowitz, batch=2), model, horowitz)
    entry = 2 * 2 * 8 * 2 * 2                      # K and V, 2 kv heads x 8 dims, bf16, 2 sequences
    assert mv.kv_cache_read == 3 * 30 * entry and mv.kv_cache_write == 3 * entry
    prefill = opcount.load_model(source, seq=30, kv_cache=True)
    mv = opcount.count_movement(opcount.count_model(prefill, horowitz, batch=2), prefill, horowitz)
    assert mv.kv_cache_read == 0 and mv.kv_cache_write == 3 * 30 * entry


# --- mixture of experts ---------------------------------------------------------------------------

def test_moe_active_macs_equal_the_dense_model_with_k_experts(tmp_path, profile):
    d, ffn, experts, k, t, depth = 64, 96, 4, 2, 7, 3
    moe = tiny_config(tmp_path, name="moe", model_type="mixtral", num_local_experts=experts,
                      num_experts_per_tok=k, intermediate_size=ffn)
    dense = tiny_config(tmp_path, name="dense", intermediate_size=k * ffn)
    router = depth * t * d * experts
    assert count(moe, profile, seq=t).macs - router == count(dense, profile, seq=t).macs
    model = opcount.load_model(moe, seq=t)
    expert = 3 * d * ffn
    assert model.params - model.active_params == depth * (experts - k) * expert


def test_moe_forward_by_hand(profile):
    # 2 tokens of d=3, 4 experts, top 2, ffn 5, silu (cmos-generic recipe), no bias
    model = opcount.load_model({"input": [2, 3], "layers": [
        {"type": "moe", "experts": 4, "top_k": 2, "ffn": 5, "name": "moe"}]})
    layer = opcount.count_model(model, profile).layers[0]
    silu = opcount.count_model(opcount.load_model({"input": [20], "layers": [{"type": "silu"}]}),
                               profile).totals["forward"]           # 2 tokens x 2 experts x 5
    exp = opcount.count_model(opcount.load_model({"input": [8], "layers": [{"type": "elementwise",
                              "ops": {"exp": 1}}]}), profile).totals["forward"]
    apps = 4
    expected = {op: silu[op] + exp[op] for op in opcount.BASIC_OPS}
    for op, n in {
        # router 2x(4 outputs of 3 mul, 2 add); softmax over 4 (3 cmp, 4 sub, 4 exp, 3 add, 4 div)
        "mul": 2 * 4 * 3, "add": 2 * 4 * 2 + 2 * 3, "cmp": 2 * 3, "sub": 2 * 4, "div": 2 * 4,
    }.items():
        expected[op] += n
    expected["cmp"] += 2 * (3 + 2)                           # top 2 of 4: 3 + 2 comparisons per token
    expected["add"] += 2 * 1                                 # renormalize: 1 add and 2 div per token
    expected["div"] += 2 * 2
    # per application: gate, up (5 x 3 mul, 5 x 2 add each), gated product 5 mul, down 3 x 5 mul
    # 3 x 4 add, the weight 3 mul; per token the two outputs summed, 3 add
    expected["mul"] += apps * (2 * 15 + 5 + 15 + 3)
    expected["add"] += apps * (2 * 10 + 12) + 2 * 3
    assert layer.stages["forward"] == expected
    assert layer.macs["forward"] == 2 * 4 * 3 + apps * 45


def test_moe_training_is_complete_and_updates_every_expert(tmp_path, profile):
    source = tiny_config(tmp_path, model_type="mixtral", num_local_experts=4, num_experts_per_tok=2)
    model = opcount.load_model(source, seq=6)
    result = opcount.count_model(model, profile, phase="training", batch=2)
    assert result.complete
    assert result.totals["update"]["sqrt"] == model.params      # adamw: one sqrt per parameter
    assert result.active_params == model.active_params < model.params


# --- formats, zoo, HF ---------------------------------------------------------------------------

def test_torch_dtype_sets_the_format_unless_overridden(tmp_path):
    source = tiny_config(tmp_path)
    assert {layer.format for layer in opcount.load_model(source, seq=4).layers} == {"bf16"}
    assert {layer.format for layer in opcount.load_model(source, seq=4, format="fp16").layers} == {"fp16"}
    assert opcount.load_model(tiny_config(tmp_path, name="f32", torch_dtype=None), seq=4).format == "fp32"
    with pytest.raises(opcount.ModelError, match=r"tiny\.json: 'torch_dtype' 'int8' is not a format tosim counts"):
        opcount.load_model(tiny_config(tmp_path, torch_dtype="int8"), seq=4)


def test_mistral_and_mixtral_configs_match_the_zoo(tmp_path, profile):
    mistral = tiny_config(tmp_path, name="mistral", model_type="mistral", hidden_size=4096, intermediate_size=14336,
                          num_attention_heads=32, num_key_value_heads=8, num_hidden_layers=32, vocab_size=32000,
                          max_position_embeddings=32768, sliding_window=4096, rms_norm_eps=1e-5)
    assert opcount.load_model(mistral, seq=8).params == opcount.load_model("zoo:mistral-7b", seq=8).params
    mixtral = tiny_config(tmp_path, name="mixtral", model_type="mixtral", hidden_size=4096, intermediate_size=14336,
                          num_attention_heads=32, num_key_value_heads=8, num_hidden_layers=32, vocab_size=32000,
                          max_position_embeddings=32768, sliding_window=None, num_local_experts=8,
                          num_experts_per_tok=2, rms_norm_eps=1e-5)
    hf, zoo = opcount.load_model(mixtral, seq=8), opcount.load_model("zoo:mixtral-8x7b", seq=8)
    assert (hf.params, hf.active_params) == (zoo.params, zoo.active_params) == (46_702_792_704, 12_879_925_248)
    assert count(mistral, profile, seq=8, format="fp32").totals == count("zoo:mistral-7b", profile, seq=8).totals


def test_t5_small_is_an_encoder_decoder():
    model = opcount.load_model("zoo:t5-small", seq=16)
    assert model.params == 60_506_624
    cross = [layer for layer in model.layers if layer.type == "attention" and layer.attrs["cross"]]
    assert len(cross) == 6 and len({layer.inputs[1] for layer in cross}) == 1
    memory = model.layer(cross[0].inputs[1])
    assert memory.inputs == ("encoder_final_norm",) and cross[0].attrs["s"] == 16
    with pytest.raises(opcount.ModelError, match=r"^zoo:t5-small: not a causal language model"):
        opcount.load_model("zoo:t5-small", seq=1, past=4)


def test_serving_steps_are_refused_where_they_do_not_apply(tmp_path):
    with pytest.raises(opcount.ModelError, match=r"^zoo:bert-base: not a causal language model"):
        opcount.load_model("zoo:bert-base", seq=1, past=4)
    spec = tmp_path / "mlp.yaml"
    spec.write_text("input: [4]\nlayers:\n  - {type: linear, out: 2}\n")
    with pytest.raises(opcount.ModelError, match=r"mlp\.yaml: a model spec fixes its layers"):
        opcount.load_model(str(spec), kv_cache=True)
    with pytest.raises(opcount.ModelError, match=r"^zoo:resnet18: not a causal language model"):
        generation.count_generation("zoo:resnet18", load("cmos-generic"), prompt=4, new_tokens=2)


# --- whole requests -------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, prompt, new", [({}, 10, 8), ({"model_type": "mistral", "sliding_window": 14}, 10, 9),
                                                 ({"model_type": "mistral", "sliding_window": 4}, 10, 6), ({}, 5, 1)])
def test_closed_form_equals_counting_every_step(tmp_path, profile, fields, prompt, new):
    source = tiny_config(tmp_path, **fields)
    fast = generation.count_generation(source, profile, prompt=prompt, new_tokens=new, batch=2)
    slow = generation.count_generation(source, profile, prompt=prompt, new_tokens=new, batch=2, per_step=True)
    assert fast.method == "closed-form" and (slow.method == "per-step" or new <= 2)
    assert not any((fast.total - slow.total).ravel())
    assert list(fast.decode_macs) == list(slow.decode_macs) and fast.macs == slow.macs
    # and both equal the prefill plus each step built and counted on its own
    steps = [count(source, profile, seq=1, past=prompt + j, kv_cache=True, logits="last", batch=2)
             for j in range(new - 1)]
    assert fast.macs == fast.prefill.macs + sum(s.macs for s in steps)
    for j, s in enumerate(steps):
        assert not any((fast.decode_counts(j) - generation.counts_array(s)).ravel())


def test_generation_movement_is_affine_in_the_keys(tmp_path):
    horowitz = load("horowitz45")
    source = tiny_config(tmp_path, model_type="mistral", sliding_window=12)
    fast = generation.count_generation(source, horowitz, prompt=6, new_tokens=12, memory=horowitz)
    slow = generation.count_generation(source, horowitz, prompt=6, new_tokens=12, memory=horowitz, per_step=True)
    np.testing.assert_allclose(fast.decode_movement_j, slow.decode_movement_j, rtol=1e-12)
    np.testing.assert_allclose(fast.decode_compute_j, slow.decode_compute_j, rtol=1e-12)
    assert np.diff(fast.decode_movement_j)[-1] == 0 and np.diff(fast.decode_movement_j)[0] > 0


# --- training as run in practice -----------------------------------------------------------------

def test_full_recompute_runs_every_forward_again_but_the_last(tmp_path, profile):
    source = tiny_config(tmp_path)
    model = opcount.load_model(source, seq=6)
    plain = opcount.count_model(model, profile, phase="training", batch=2)
    full = opcount.count_model(model, profile, phase="training", batch=2, recompute="full")
    extra_macs = 0
    for a, b in zip(plain.layers, full.layers):
        assert a.name == b.name and a.stages["forward"] == b.stages["forward"]
        # every layer here computes a backward pass (all follow the embedding, which has parameters)
        recomputed = a.name != model.layers[-1].name
        want = {op: a.stages["backward"][op] + (a.stages["forward"][op] if recomputed else 0) for op in a.stages["backward"]}
        assert b.stages["backward"] == want, a.name
        extra_macs += a.macs["forward"] if recomputed else 0
    assert full.macs == plain.macs + extra_macs and extra_macs > 0


def test_selective_recompute_runs_the_attention_core_again(profile):
    t, d, heads = 5, 16, 4
    layers = [{"type": "linear", "out": d, "bias": False},
              {"type": "attention", "heads": heads, "bias": False, "causal": True, "dropout": 0.1, "name": "att"},
              {"type": "linear", "out": 3}]
    model = opcount.load_model({"input": [t, d], "layers": layers})
    plain = opcount.count_model(model, profile, phase="training")
    selective = opcount.count_model(model, profile, phase="training", recompute="selective")
    att_plain, att_sel = plain.layers[1], selective.layers[1]
    # the core: the attention's forward minus its four d x d projections (t x d x d mul, t x d x (d-1) add each)
    core = dict(att_plain.stages["forward"])
    core["mul"] -= 4 * t * d * d
    core["add"] -= 4 * t * d * (d - 1)
    assert {op: att_sel.stages["backward"][op] - att_plain.stages["backward"][op] for op in core} == core
    # cmp: the softmax maxima, the exp recipe's 2 range checks per entry (cmos-generic), the dropout draws
    pairs = heads * t * (t + 1) // 2
    assert core["cmp"] == (pairs - heads * t) + 2 * pairs + pairs
    for a, b in zip(plain.layers, selective.layers):
        if a.name != "att":
            assert a.stages == b.stages
    assert selective.macs - plain.macs == heads * (t * (t + 1) // 2) * 2 * (d // heads)
    with pytest.raises(ValueError, match=r"^recompute applies to the training phase, not 'inference'$"):
        opcount.count_model(model, profile, recompute="full")


def test_master_weights_price_the_update_in_their_own_format(tmp_path):
    tosim = pytest.importorskip("tosim")
    source = tiny_config(tmp_path)            # bf16 from torch_dtype
    model = opcount.load_model(source, seq=6)
    prof = load("cmos-generic")
    plain = opcount.count_model(model, prof, phase="training")
    mixed = opcount.count_model(model, prof, phase="training", master_format="fp32")
    rows = [layer for layer in mixed.layers if layer.type == "update"]
    owners = [layer for layer in plain.layers if layer.params]
    assert [r.name for r in rows] == [f"{layer.name}/update" for layer in owners]
    assert all(r.format == "fp32" and r.stages["update"] == o.stages["update"] for r, o in zip(rows, owners))
    assert mixed.totals == plain.totals and mixed.params == plain.params
    # per stage: forward and backward as in bf16, the update as a model kept in fp32
    got = tosim.score(source, seq=6, phase="training", master_format="fp32")
    bf16 = tosim.score(source, seq=6, phase="training")
    fp32 = tosim.score(source, seq=6, phase="training", format="fp32")
    assert got.tos_by_stage["forward"] == bf16.tos_by_stage["forward"]
    assert got.tos_by_stage["backward"] == bf16.tos_by_stage["backward"]
    assert got.tos_by_stage["update"] == pytest.approx(fp32.tos_by_stage["update"], rel=1e-12)
    assert got.tos_by_stage["update"] > bf16.tos_by_stage["update"]
    # the movement model reads and writes the master weights in fp32, and prices their arithmetic
    horowitz = load("horowitz45")
    mv = opcount.count_movement(opcount.count_model(model, horowitz, phase="training", master_format="fp32"),
                                model, horowitz)
    update_rows = [m for m in mv.layers if m.type == "update"]
    assert sum(m.bytes["update"]["dram"]["weights"] for m in update_rows) == 3 * model.params * 4
    assert all(m.compute_j > 0 for m in update_rows)
    assert all(m.bytes["update"]["dram"]["weights"] == 0 for m in mv.layers if m.type != "update")


def test_moe_with_one_expert_is_the_gated_mlp_plus_the_router(profile):
    """E = k = 1: the expert is the plain gated MLP (counted by the linear, silu and mul handlers
    and the engine's fan-out sum), plus the router and the weighting, counted here by hand."""
    t, d, ffn, batch = 3, 4, 6, 2
    moe = opcount.load_model({"input": [t, d], "input_grad": True, "layers": [
        {"type": "moe", "experts": 1, "top_k": 1, "ffn": ffn}]})
    mlp = opcount.load_model({"input": [t, d], "input_grad": True, "layers": [
        {"type": "linear", "out": ffn, "bias": False, "name": "gate", "inputs": "input"}, {"type": "silu", "name": "act"},
        {"type": "linear", "out": ffn, "bias": False, "name": "up", "inputs": "input"},
        {"type": "mul", "inputs": ["act", "up"]}, {"type": "linear", "out": d, "bias": False}]})
    a = opcount.count_model(moe, profile, phase="training", batch=batch)
    b = opcount.count_model(mlp, profile, phase="training", batch=batch)
    rows = batch * t
    exp = opcount.count_model(opcount.load_model({"input": [rows], "layers": [
        {"type": "elementwise", "ops": {"exp": 1}}]}), profile).totals["forward"]
    forward = {op: b.totals["forward"][op] + exp[op] for op in opcount.BASIC_OPS}
    # router d mul, d-1 add; softmax over one expert 1 sub, 1 exp, 1 div; renormalize 1 div;
    # the weight d mul (per token)
    forward["mul"] += rows * (d + d)
    forward["add"] += rows * (d - 1)
    forward["sub"] += rows
    forward["div"] += rows * 2
    assert a.totals["forward"] == forward
    # the input gradient sums the gate's, the up's and the router's (2d adds per token; in the MLP
    # model the engine would count the gate/up sum in the producer of the input, and the model
    # input has none); combine: dy*w and dot(dy, out) (2d mul, d-1 add);
    # renormalize 1 mul, 1 sub, 1 div; softmax over one 2 mul, 1 sub; the router's input gradient
    # d mul and its weight gradient d mul per token, d*(rows-1) add
    backward = dict(b.totals["backward"])
    backward["mul"] += rows * (2 * d + 1 + 2 + d + d)
    backward["add"] += rows * (d - 1) + 2 * rows * d + d * (rows - 1)
    backward["sub"] += rows * 2
    backward["div"] += rows
    assert a.totals["backward"] == backward
    assert a.macs == b.macs + 3 * rows * d          # the router: forward, input and weight gradients


def test_hugging_face_t5_configs(tmp_path, profile):
    t5 = tmp_path / "t5.json"
    t5.write_text(json.dumps({"model_type": "t5", "d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6,
                              "num_heads": 8, "vocab_size": 32128, "feed_forward_proj": "relu"}))
    assert count(str(t5), profile, seq=16).totals == count("zoo:t5-small", profile, seq=16).totals
    # google/flan-t5-small: T5 v1.1 layout (gated-gelu, untied head), 6 heads of 64 on d_model 512
    flan = tmp_path / "flan.json"
    flan.write_text(json.dumps({"model_type": "t5", "d_model": 512, "d_kv": 64, "d_ff": 1024, "num_layers": 8,
                                "num_decoder_layers": 8, "num_heads": 6, "vocab_size": 32128,
                                "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False,
                                "torch_dtype": "float32"}))
    model = opcount.load_model(str(flan), seq=16)
    assert model.params == 76_961_152
    assert opcount.count_model(model, profile, phase="training").complete


def test_qwen2_output_projection_has_no_bias(tmp_path):
    # Qwen/Qwen2-0.5B: biases on q, k, v only; 494,032,768 parameters (a bias on o_proj too would
    # add 24 x 896)
    path = tmp_path / "qwen2.json"
    path.write_text(json.dumps({"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
                                "num_attention_heads": 14, "num_key_value_heads": 2, "num_hidden_layers": 24,
                                "vocab_size": 151936, "tie_word_embeddings": True, "max_position_embeddings": 32768,
                                "rms_norm_eps": 1e-6, "torch_dtype": "bfloat16"}))
    assert opcount.load_model(str(path), seq=8).params == 494_032_768
