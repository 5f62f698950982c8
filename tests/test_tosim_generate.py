"""tosim.generate and ``tosim score --phase prefill|decode|generate``: a generation request's TOs,
joules and KV-cache bytes agree with scoring each step on its own."""
import json

import pytest

import opcount
import tosim
from tosim.cli import main

DEVICE = {"feature": "tos", "coefficients": [5.0, 2e-12]}


@pytest.fixture
def tiny(tmp_path):
    config = {"model_type": "mistral", "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 8,
              "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 50, "max_position_embeddings": 256,
              "sliding_window": 12, "torch_dtype": "bfloat16"}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_request_totals_and_curve_agree_with_scoring_each_step(tiny):
    r = tosim.generate(tiny, "cmos-generic", prompt=8, new_tokens=9, batch=3, device=DEVICE)
    assert r.method == "closed-form" and r.complete and r.format == "bf16"
    assert len(r.curve) == 9 and r.curve[0]["step"] == "prefill"
    assert [p["cache"] for p in r.curve[1:]] == list(range(8, 16))
    assert [p["keys"] for p in r.curve[1:]] == [9, 10, 11, 12, 12, 12, 12, 12]
    for point in r.curve:
        past, seq = (point["cache"], 1) if point["step"] == "decode" else (0, 8)
        model = opcount.load_model(tiny, seq=seq, past=past, kv_cache=True, logits="last")
        step = tosim.score(model, "cmos-generic", batch=3)
        assert point["macs"] == step.macs
        assert point["tos"] == pytest.approx(step.tos, rel=1e-12)
    assert r.tos == pytest.approx(sum(p["tos"] for p in r.curve), rel=1e-12)
    assert r.tos == pytest.approx(r.tos_prefill + r.tos_decode, rel=1e-12)
    assert r.macs == sum(p["macs"] for p in r.curve) and r.flops == 2 * r.macs
    assert r.tos_per_token == pytest.approx(r.tos / 27)
    # energy: the device's line of the request; each later token costs c1 x its TOs
    assert r.energy_j == pytest.approx(5.0 + 2e-12 * r.tos)
    assert sum(p["energy_j"] for p in r.curve) == pytest.approx(r.energy_j, rel=1e-12)
    assert r.curve[0]["energy_j"] == pytest.approx(5.0 + 2e-12 * r.curve[0]["tos"])
    assert r.curve[5]["energy_j"] == pytest.approx(2e-12 * r.curve[5]["tos"], rel=1e-9)
    # KV cache: 2 layers x (K and V: 2 kv heads x 8 dims) x 2 bytes = 128 bytes per token and sequence
    assert r.kv_write_bytes == 128 * 3 * (8 + 8) and r.kv_cache_bytes == 128 * 3 * min(16, 12)
    assert r.kv_read_bytes == 128 * 3 * sum(min(c + 1, 12) - 1 for c in range(8, 16))


def test_generate_with_a_memory_profile_and_a_format(tiny):
    r = tosim.generate(tiny, "horowitz45", prompt=6, new_tokens=4, format="fp16")
    assert r.format == "fp16" and r.kv_cache_bytes == 128 * 9
    assert r.energy_compute_j == pytest.approx(sum(p["energy_compute_j"] for p in r.curve))
    assert r.energy_movement_j > 0 and r.energy_j is None


def test_generate_refuses_what_it_cannot_serve():
    with pytest.raises(opcount.ModelError, match=r"^zoo:bert-base: not a causal language model"):
        tosim.generate("zoo:bert-base", prompt=4, new_tokens=2)
    with pytest.raises(tosim.ScoreError, match=r"^prompt must be a positive integer, not 0$"):
        tosim.generate("zoo:gpt2", prompt=0, new_tokens=2)


def test_cli_generate_json_and_per_token_plot(tiny, tmp_path, capsys):
    png = tmp_path / "curve.png"
    assert main(["score", tiny, "--phase", "generate", "--prompt", "8", "--new-tokens", "5", "--batch", "2",
                 "--json", "--per-token", str(png)]) == 0
    rows = json.loads(capsys.readouterr().out)
    api = tosim.generate(tiny, prompt=8, new_tokens=5, batch=2)
    assert rows[0]["tos"] == api.tos and rows[0]["kv_cache_bytes"] == api.kv_cache_bytes
    assert [p["tos"] for p in rows[0]["curve"]] == [p["tos"] for p in api.curve]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_prefill_and_decode_rows(tiny, capsys):
    assert main(["score", tiny, "--phase", "prefill", "--prompt", "8", "--json"]) == 0
    prefill = json.loads(capsys.readouterr().out)[0]
    assert prefill["macs"] == tosim.score(opcount.load_model(tiny, seq=8, kv_cache=True, logits="last")).macs
    assert main(["score", tiny, "--phase", "decode", "--context", "20", "--json"]) == 0
    decode = json.loads(capsys.readouterr().out)[0]
    step = tosim.score(opcount.load_model(tiny, seq=1, past=20, kv_cache=True, logits="last"))
    assert (decode["macs"], decode["mul"], decode["tos"]) == (step.macs, step.counts["mul"], pytest.approx(step.tos))
    assert decode["kv_read_bytes"] == 128 * 11                  # the window: 11 cached keys


@pytest.mark.parametrize("argv, message", [
    (["--phase", "generate"], "--phase generate needs --prompt P (the prompt tokens)"),
    (["--phase", "decode", "--prompt", "3"], "--phase decode needs --context L (the KV cache length)"),
    (["--phase", "prefill", "--prompt", "3", "--new-tokens", "2"],
     "--phase prefill takes --prompt only; --new-tokens is for --phase generate"),
    (["--prompt", "3"], "--prompt is for --phase prefill, decode or generate"),
    (["--phase", "prefill", "--prompt", "3", "--per-token"], "--per-token is for --phase generate (--phase prefill is "
                                                              "one step)"),
])
def test_cli_usage_errors_are_one_line(argv, message, capsys):
    assert main(["score", "zoo:gpt2", *argv]) == 2
    assert capsys.readouterr().err == f"tosim: error: {message}\n"


def test_cli_bad_model_keeps_the_good_rows(tiny, capsys):
    assert main(["score", tiny, "zoo:resnet18", "--phase", "generate", "--prompt", "4", "--new-tokens", "2"]) == 1
    out, err = capsys.readouterr()
    assert "\nmistral " in out and "\nzoo:resnet18   error\n" in out and "1 of 2 models scored" in out
    assert err.strip().endswith("tosim: error: zoo:resnet18: not a causal language model, so it has no serving step "
                                "(prefill, decode) to build")


def test_format_flag_of_count_and_score(capsys):
    assert main(["count", "zoo:mixtral-8x7b", "--seq", "4", "--format", "bf16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {layer["format"] for layer in out["layers"]} == {"bf16"}
    assert (out["params"], out["active_params"]) == (46_702_792_704, 12_879_925_248)
    bf16 = tosim.score("zoo:gpt2", seq=8, format="bf16")
    fp32 = tosim.score("zoo:gpt2", seq=8)
    assert bf16.counts == fp32.counts and bf16.tos < fp32.tos
    with pytest.raises(tosim.ScoreError, match=r"^format must be one of fp16, bf16, fp32, fp64, fp8_e4m3, fp8_e5m2, tf32, int8, int4, int32, not 'int16'$"):
        tosim.score("zoo:gpt2", seq=8, format="int16")


def test_cli_recompute_and_master_format(capsys):
    assert main(["count", "zoo:gpt2", "--seq", "8", "--phase", "training", "--recompute", "selective",
                 "--format", "bf16", "--master-format", "fp32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    updates = [layer for layer in out["layers"] if layer["type"] == "update"]
    assert updates and all(layer["format"] == "fp32" for layer in updates)
    base = opcount.count_model(opcount.load_model("zoo:gpt2", seq=8), "cmos-generic", phase="training")
    # selective: 12 causal attention layers, 12 heads, 8(9)/2 entries each, QK^T and PV of 64 dims
    assert out["macs"] == base.macs + 12 * 12 * 36 * 2 * 64
    assert main(["score", "zoo:gpt2", "--recompute", "full"]) == 2
    assert capsys.readouterr().err == "tosim: error: recompute applies to the training phase, not 'inference'\n"
