"""opcount built-in zoo: parameter counts equal the reference implementations, MACs equal the
published figures (torchvision docs "GFLOPS" column, which counts multiply-accumulates of
conv/linear/matmul at batch 1), transformer MACs equal their closed forms."""
import pytest

import opcount

# torchvision.models / Hugging Face transformers parameter counts
PARAMS = {
    "lenet5": 61_706,
    "alexnet": 61_100_840,
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "mobilenet_v2": 3_504_872,
    "squeezenet1_0": 1_248_424, "squeezenet1_1": 1_235_496,
    "googlenet": 6_624_904,
    "densenet121": 7_978_856,
    "vit_b_16": 86_567_656,
    "bert-base": 109_482_240,
    "gpt2": 124_439_808, "gpt2-medium": 354_823_168, "gpt2-large": 774_030_080, "gpt2-xl": 1_557_611_200,
    "llama2-7b": 6_738_415_616, "llama2-13b": 13_015_864_320, "llama2-70b": 68_976_648_192,
    "gpt3-175b": 174_604_259_328,
    # mistralai/Mistral-7B-v0.1, Mixtral-8x7B-v0.1 (46.7 B in all, 12.9 B active), t5-small
    "mistral-7b": 7_241_732_096, "mixtral-8x7b": 46_702_792_704, "t5-small": 60_506_624,
    # pytorch/examples word_language_model RNNModel, LSTM 650 x 2 on a 10,000-word vocabulary
    "lstm-lm": 19_780_400,
}

# torchvision model docs, "GFLOPS" (multiply-accumulates, 224x224, batch 1), two decimals
TORCHVISION_GMACS = {
    "alexnet": 0.71, "vgg11": 7.61, "vgg13": 11.31, "vgg16": 15.47, "vgg19": 19.63, "resnet18": 1.81,
    "resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80, "resnet152": 11.51, "mobilenet_v2": 0.30,
    "squeezenet1_0": 0.82, "squeezenet1_1": 0.35, "googlenet": 1.50, "densenet121": 2.83, "vit_b_16": 17.56,
}


def test_zoo_names_cover_the_issue():
    names = opcount.zoo_names()
    assert set(PARAMS) <= set(names)
    assert names == sorted(names)
    assert len([n for n in names if n.startswith("li2022-mlp-")]) == 45
    assert len([n for n in names if n.startswith("li2022-cnn-")]) == 9


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_counts(name):
    assert opcount.load_model(f"zoo:{name}").params == PARAMS[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_vision_macs_match_torchvision(name, profile):
    result = opcount.count_model(opcount.load_model(f"zoo:{name}"), profile)
    assert result.complete
    assert round(result.macs / 1e9, 2) == TORCHVISION_GMACS[name]


def test_lenet5_macs_by_hand(profile):
    result = opcount.count_model(opcount.load_model("zoo:lenet5"), profile)
    assert result.macs == 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10


@pytest.mark.parametrize("name, d, layers, vocab, ffn, heads, kv_heads", [
    ("gpt2", 768, 12, 50257, 3072, 12, 12),
    ("gpt2-xl", 1600, 48, 50257, 6400, 25, 25),
    ("llama2-7b", 4096, 32, 32000, 11008, 32, 32),
    ("llama2-70b", 8192, 80, 32000, 28672, 64, 8),
])
def test_transformer_macs_closed_form(profile, name, d, layers, vocab, ffn, heads, kv_heads):
    t = 128
    result = opcount.count_model(opcount.load_zoo(name, seq=t), profile)
    dkv = d // heads * kv_heads
    mlp = (3 if name.startswith("llama") else 2) * d * ffn
    # projections and MLP per token; QK^T and PV of a causal decoder over the t(t+1)/2 entries each
    # head keeps (hd each), 2 * t(t+1)/2 * hd * heads = t(t+1) d (dense attention would be 2 t^2 d)
    per_layer = t * (2 * d * d + 2 * d * dkv + mlp) + t * (t + 1) * d
    assert result.macs == layers * per_layer + t * d * vocab
    assert result.complete


def test_seq_and_errors():
    assert opcount.load_zoo("bert-base", seq=16).input_shape == (16,)
    with pytest.raises(opcount.ModelError, match=r"^zoo:resnet18: has no sequence length to set$"):
        opcount.load_zoo("resnet18", seq=8)
    with pytest.raises(opcount.ModelError, match=r"^zoo:gpt2: sequence length must be a positive integer, not 0$"):
        opcount.load_zoo("gpt2", seq=0)


def test_gpt3_training_totals_are_exact_past_int64(profile):
    batch = 16384
    result = opcount.count_model(opcount.load_zoo("gpt3-175b"), profile, phase="training", batch=batch)
    totals = result.totals["all"]
    assert totals["mul"] > 10**19 and isinstance(totals["mul"], int)
    head = next(layer for layer in result.layers if layer.name == "lm_head")
    assert head.stages["forward"]["mul"] == batch * 2048 * 12288 * 50257
    # each layer's entries still fit int64: the array holds them exactly, only the sum does not
    array = result.as_array()
    assert sum(int(v) for v in array[:, :, 2].ravel()) == totals["mul"]
    assert totals["mul"] > int(array[:, :, 2].max()) * 100


def test_every_zoo_model_counts_completely_for_training(profile):
    for name in opcount.zoo_names():
        if name.startswith(("gpt", "llama")):
            continue                      # covered above; large
        model = opcount.load_model(f"zoo:{name}")
        result = opcount.count_model(model, profile, phase="training", batch=2)
        assert result.complete, name
        # sgd: 1 mul per parameter; adamw: 7 per parameter + 2 for the step's bias corrections
        expected = result.params if model.optimizer == "sgd" else 7 * result.params + 2
        assert result.totals["update"]["mul"] == expected, name


def test_seq_past_the_learned_position_table_is_refused(capsys):
    from tosim.cli import main
    with pytest.raises(opcount.ModelError, match=r"^zoo:gpt2: layer 'wpe' \(positional_embedding\): the table has "
                                                 r"1024 positions \('rows'\), fewer than the 1025 tokens of input "
                                                 r"shape \[1025, 768\]$"):
        opcount.load_zoo("gpt2", seq=1025)
    assert opcount.load_zoo("gpt2", seq=1024).input_shape == (1024,)
    # BERT's token-type table has 2 rows for 512 tokens: it is indexed by type, not position
    bert = opcount.load_zoo("bert-base")
    assert bert.layer("token_type_embedding").attrs == {"rows": 2, "dim": 768, "token_types": True}
    assert main(["count", "zoo:gpt2", "--seq", "99999999"]) == 2
    err = capsys.readouterr().err
    assert err == ("tosim: error: zoo:gpt2: layer 'wpe' (positional_embedding): the table has 1024 positions "
                   "('rows'), fewer than the 99999999 tokens of input shape [99999999, 768]\n")


def test_unknown_zoo_name_lists_every_name_and_a_close_match():
    known = ("alexnet, bert-base, densenet121, googlenet, gpt2, gpt2-large, gpt2-medium, gpt2-xl, gpt3-175b, "
             "lenet5, llama2-13b, llama2-70b, llama2-7b, lstm-lm, mistral-7b, mixtral-8x7b, mobilenet_v2, resnet101, "
             "resnet152, resnet18, resnet34, resnet50, squeezenet1_0, squeezenet1_1, t5-small, vgg11, vgg13, vgg16, "
             "vgg19, vit_b_16, "
             "li2022-mlp-{4..18}-{sigmoid,tanh,gelu}, li2022-cnn-{2..10}")
    with pytest.raises(opcount.ModelError) as info:
        opcount.load_zoo("nope")
    assert str(info.value) == f"zoo:nope: unknown zoo model (known: {known})"
    with pytest.raises(opcount.ModelError) as info:
        opcount.load_zoo("gtp2")
    assert str(info.value) == f"zoo:gtp2: unknown zoo model (known: {known}; did you mean gpt2?)"
