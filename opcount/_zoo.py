"""The built-in model zoo (``zoo:NAME``), written as Python builders of model specs.

Architectures follow the reference implementations layer for layer, so parameter counts equal
theirs exactly: torchvision 0.2x for the vision models (ImageNet, 224x224 inputs, 1000 classes,
no auxiliary heads), Hugging Face transformers for BERT-base (``BertModel`` with pooler), GPT-2
(``GPT2LMHeadModel``, tied embeddings) and LLaMA-2 (``LlamaForCausalLM``, untied head). LeNet-5
is the classic 32x32 version (LeCun et al. 1998, full C3 connections, 61,706 parameters). GPT-3
175B is the GPT-2 architecture at the sizes of Brown et al. 2020, Table 2.1 (96 layers, d=12288,
96 heads, context 2048, dense attention in every layer), 174,604,259,328 parameters.

Layers that torchvision runs in place carry ``inplace: true`` (their output written over their
input, no output allocated; the counts do not depend on it, the device energy model reads it),
exactly where torchvision's definitions have it (torchvision itself is not a dependency: this
follows its source, ``torchvision/models``): every ReLU of AlexNet, VGG, ResNet, SqueezeNet,
GoogLeNet (``F.relu(x, inplace=True)``) and DenseNet and MobileNetV2's ReLU6
(``Conv2dNormActivation``'s ``inplace=True``), and ResNet's residual add (``out += identity``);
their dropouts, MobileNetV2's residual add (``x + self.conv(x)``) and ViT's layers are not in
place. The other models (LeNet-5, the Hugging Face and paper models) have no in-place layer.

Sequence models are built at their full context by default (BERT 512, GPT-2 1024, LLaMA-2 4096,
GPT-3 2048, ViT 197 tokens, the LSTM language model ``lstm-lm`` its 35 training steps);
``load_zoo("gpt2", seq=128)`` builds a shorter one.

The paper's experiment sets (li2022, Table II): ``li2022-mlp-W-ACT`` is the Banknote DNN, 4
inputs, 3 hidden layers of width W (4..18) with activation ACT (sigmoid, tanh, gelu) and 1 output
(loss mse, optimizer sgd: the paper does not say; these are our choice). ``li2022-cnn-L`` has L
(2..10) convolutions of 32 channels with GELU on 256x256x3 inputs, kernel 3 for L <= 6 and kernel
L-3 (4, 5, 6, 7) for L = 7..10, stride 1 and no padding; the head (global average pool, linear
to 2 classes, cross-entropy, sgd) is our choice, the paper does not give one.
"""
from __future__ import annotations

from ._ir import ModelError, ModelIR
from ._spec import spec_to_model

__all__ = ["zoo_names", "load_zoo", "ZOO_SOURCES", "CAUSAL_LMS"]


class _Net:
    def __init__(self):
        self.layers = []
        self.last = "input"
        self.counter = {}

    def add(self, type_, name=None, inputs=None, **fields):
        if name is None:
            self.counter[type_] = self.counter.get(type_, 0) + 1
            name = f"{type_}{self.counter[type_]}"
        layer = {"type": type_, "name": name, **fields}
        if inputs is not None:
            layer["inputs"] = inputs
        elif self.last != (self.layers[-1]["name"] if self.layers else "input"):
            layer["inputs"] = [self.last]
        self.layers.append(layer)
        self.last = name
        return name

    def at(self, name):
        self.last = name
        return self


def _spec(name, input_shape, net, loss="cross_entropy", optimizer="sgd", format=None):
    # no format: the zoo's models are counted in the profile's default_format (fp32 without one)
    return {"name": name, "input": list(input_shape), "loss": loss, "optimizer": optimizer,
            **({"format": format} if format is not None else {}),
            "layers": net.layers}


# --- vision -----------------------------------------------------------------------------------

def _lenet5():
    n = _Net()
    n.add("conv2d", out=6, kernel=5); n.add("tanh"); n.add("avgpool2d", kernel=2)
    n.add("conv2d", out=16, kernel=5); n.add("tanh"); n.add("avgpool2d", kernel=2)
    n.add("flatten"); n.add("linear", out=120); n.add("tanh"); n.add("linear", out=84); n.add("tanh")
    n.add("linear", out=10)
    return _spec("lenet5", (1, 32, 32), n)


def _alexnet():
    n = _Net()
    for out, k, s, p, pool in [(64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
                               (256, 3, 1, 1, False), (256, 3, 1, 1, True)]:
        n.add("conv2d", out=out, kernel=k, stride=s, padding=p); n.add("relu", inplace=True)
        if pool:
            n.add("maxpool2d", kernel=3, stride=2)
    n.add("adaptive_avgpool2d", out=6); n.add("flatten")
    n.add("dropout", p=0.5); n.add("linear", out=4096); n.add("relu", inplace=True)
    n.add("dropout", p=0.5); n.add("linear", out=4096); n.add("relu", inplace=True); n.add("linear", out=1000)
    return _spec("alexnet", (3, 224, 224), n)


_VGG = {11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
        13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
        16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
        19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
             512, 512, 512, 512, "M"]}


def _vgg(depth):
    n = _Net()
    for v in _VGG[depth]:
        if v == "M":
            n.add("maxpool2d", kernel=2)
        else:
            n.add("conv2d", out=v, kernel=3, padding=1); n.add("relu", inplace=True)
    n.add("adaptive_avgpool2d", out=7); n.add("flatten")
    n.add("linear", out=4096); n.add("relu", inplace=True); n.add("dropout", p=0.5)
    n.add("linear", out=4096); n.add("relu", inplace=True); n.add("dropout", p=0.5); n.add("linear", out=1000)
    return _spec(f"vgg{depth}", (3, 224, 224), n)


def _conv_bn(n, out, kernel, stride=1, padding=0, groups=1, relu="relu", eps=None):
    """Convolution, batch norm and (unless ``relu`` is None) the activation, in place as in every
    torchvision model that uses it (ResNet, MobileNetV2, GoogLeNet, DenseNet)."""
    n.add("conv2d", out=out, kernel=kernel, stride=stride, padding=padding, groups=groups, bias=False)
    n.add("batchnorm", **({"eps": eps} if eps is not None else {}))
    if relu:
        n.add(relu, inplace=True)
    return n.last


_RESNET = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3]),
           101: ("bottleneck", [3, 4, 23, 3]), 152: ("bottleneck", [3, 8, 36, 3])}


def _resnet(depth):
    block, counts = _RESNET[depth]
    expansion = 1 if block == "basic" else 4
    n = _Net()
    _conv_bn(n, 64, 7, 2, 3)
    n.add("maxpool2d", kernel=3, stride=2, padding=1)
    channels = 64
    for stage, (planes, count) in enumerate(zip([64, 128, 256, 512], counts)):
        for b in range(count):
            stride = 2 if stage > 0 and b == 0 else 1
            entry = n.last
            if block == "basic":
                _conv_bn(n, planes, 3, stride, 1)
                _conv_bn(n, planes, 3, 1, 1, relu=None)
            else:
                _conv_bn(n, planes, 1)
                _conv_bn(n, planes, 3, stride, 1)          # torchvision v1.5: stride on the 3x3
                _conv_bn(n, planes * expansion, 1, relu=None)
            main = n.last
            if stride != 1 or channels != planes * expansion:
                n.at(entry)
                shortcut = _conv_bn(n, planes * expansion, 1, stride, relu=None)
            else:
                shortcut = entry
            n.add("add", inputs=[main, shortcut], inplace=True); n.add("relu", inplace=True)   # out += identity
            channels = planes * expansion
    n.add("global_avgpool"); n.add("linear", out=1000)
    return _spec(f"resnet{depth}", (3, 224, 224), n)


def _mobilenet_v2():
    n = _Net()
    _conv_bn(n, 32, 3, 2, 1, relu="relu6")
    channels = 32
    for t, c, count, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(count):
            stride = s if i == 0 else 1
            entry = n.last
            hidden = channels * t
            if t != 1:
                _conv_bn(n, hidden, 1, relu="relu6")
            _conv_bn(n, hidden, 3, stride, 1, groups=hidden, relu="relu6")
            _conv_bn(n, c, 1, relu=None)
            if stride == 1 and channels == c:
                n.add("add", inputs=[n.last, entry])
            channels = c
    _conv_bn(n, 1280, 1, relu="relu6")
    n.add("global_avgpool"); n.add("dropout", p=0.2); n.add("linear", out=1000)
    return _spec("mobilenet_v2", (3, 224, 224), n)


def _squeezenet(version):
    n = _Net()

    def fire(squeeze, e1, e3):
        n.add("conv2d", out=squeeze, kernel=1); s = n.add("relu", inplace=True)
        n.add("conv2d", out=e1, kernel=1); a = n.add("relu", inplace=True)
        n.at(s); n.add("conv2d", out=e3, kernel=3, padding=1); b = n.add("relu", inplace=True)
        n.add("concat", inputs=[a, b], axis=0)

    def pool():
        n.add("maxpool2d", kernel=3, stride=2, ceil_mode=True)

    if version == "1_0":
        n.add("conv2d", out=96, kernel=7, stride=2); n.add("relu", inplace=True); pool()
        fire(16, 64, 64); fire(16, 64, 64); fire(32, 128, 128); pool()
        fire(32, 128, 128); fire(48, 192, 192); fire(48, 192, 192); fire(64, 256, 256); pool()
        fire(64, 256, 256)
    else:
        n.add("conv2d", out=64, kernel=3, stride=2); n.add("relu", inplace=True); pool()
        fire(16, 64, 64); fire(16, 64, 64); pool()
        fire(32, 128, 128); fire(32, 128, 128); pool()
        fire(48, 192, 192); fire(48, 192, 192); fire(64, 256, 256); fire(64, 256, 256)
    n.add("dropout", p=0.5); n.add("conv2d", out=1000, kernel=1); n.add("relu", inplace=True); n.add("global_avgpool")
    return _spec(f"squeezenet{version}", (3, 224, 224), n)


def _googlenet():
    n = _Net()

    def basic(out, kernel, stride=1, padding=0):
        return _conv_bn(n, out, kernel, stride, padding, eps=0.001)

    def inception(c1, c3r, c3, c5r, c5, proj):
        entry = n.last
        b1 = basic(c1, 1)
        n.at(entry); basic(c3r, 1); b2 = basic(c3, 3, padding=1)
        n.at(entry); basic(c5r, 1); b3 = basic(c5, 3, padding=1)       # torchvision uses 3x3 here
        n.at(entry); n.add("maxpool2d", kernel=3, stride=1, padding=1, ceil_mode=True); b4 = basic(proj, 1)
        n.add("concat", inputs=[b1, b2, b3, b4], axis=0)

    basic(64, 7, 2, 3); n.add("maxpool2d", kernel=3, stride=2, ceil_mode=True)
    basic(64, 1); basic(192, 3, padding=1); n.add("maxpool2d", kernel=3, stride=2, ceil_mode=True)
    inception(64, 96, 128, 16, 32, 32); inception(128, 128, 192, 32, 96, 64)
    n.add("maxpool2d", kernel=3, stride=2, ceil_mode=True)
    inception(192, 96, 208, 16, 48, 64); inception(160, 112, 224, 24, 64, 64)
    inception(128, 128, 256, 24, 64, 64); inception(112, 144, 288, 32, 64, 64)
    inception(256, 160, 320, 32, 128, 128)
    n.add("maxpool2d", kernel=2, stride=2, ceil_mode=True)
    inception(256, 160, 320, 32, 128, 128); inception(384, 192, 384, 48, 128, 128)
    n.add("global_avgpool"); n.add("dropout", p=0.2); n.add("linear", out=1000)
    return _spec("googlenet", (3, 224, 224), n)


def _densenet121():
    n = _Net()
    _conv_bn(n, 64, 7, 2, 3)
    n.add("maxpool2d", kernel=3, stride=2, padding=1)
    channels = 64
    for index, count in enumerate([6, 12, 24, 16]):
        features = [n.last]
        for _ in range(count):
            if len(features) > 1:
                n.add("concat", inputs=list(features), axis=0)
            else:
                n.at(features[0])
            n.add("batchnorm"); n.add("relu", inplace=True); n.add("conv2d", out=128, kernel=1, bias=False)
            n.add("batchnorm"); n.add("relu", inplace=True); n.add("conv2d", out=32, kernel=3, padding=1, bias=False)
            features.append(n.last)
        n.add("concat", inputs=list(features), axis=0)
        channels += 32 * count
        if index < 3:
            n.add("batchnorm"); n.add("relu", inplace=True); n.add("conv2d", out=channels // 2, kernel=1, bias=False)
            n.add("avgpool2d", kernel=2)
            channels //= 2
    n.add("batchnorm"); n.add("relu", inplace=True); n.add("global_avgpool"); n.add("linear", out=1000)
    return _spec("densenet121", (3, 224, 224), n)


# --- transformers -----------------------------------------------------------------------------

def _encoder_block(n, d, heads, ffn, *, pre_norm, act="gelu", eps=1e-5, approximate="none", causal=False,
                   dropout=0.1, attention=None):
    """One transformer block; pre-norm (GPT-2, ViT) or post-norm (BERT)."""
    entry = n.last
    if pre_norm:
        n.add("layernorm", eps=eps)
    n.add("attention", heads=heads, causal=causal, **(attention or {}))
    if dropout:
        n.add("dropout", p=dropout)
    n.add("add", inputs=[n.last, entry])
    if not pre_norm:
        n.add("layernorm", eps=eps)
    mid = n.last
    if pre_norm:
        n.add("layernorm", eps=eps)
    n.add("linear", out=ffn)
    n.add(act, **({"approximate": approximate} if act == "gelu" else {}))
    n.add("linear", out=d)
    if dropout:
        n.add("dropout", p=dropout)
    n.add("add", inputs=[n.last, mid])
    if not pre_norm:
        n.add("layernorm", eps=eps)


def _vit_b16(seq=None):
    n = _Net()
    n.add("conv2d", out=768, kernel=16, stride=16)
    n.add("reshape", shape=[768, 196]); n.add("transpose", perm=[1, 0])
    n.add("cls_token"); n.add("positional_embedding")
    for _ in range(12):
        _encoder_block(n, 768, 12, 3072, pre_norm=True, eps=1e-6, dropout=0.0)
    n.add("layernorm", eps=1e-6); n.add("select", index=0); n.add("linear", out=1000)
    return _spec("vit_b_16", (3, 224, 224), n)


def bert_spec(name, *, d, depth, heads, ffn, vocab, max_positions, type_vocab, seq, eps=1e-12, act="gelu",
              approximate="none", format=None):
    """HF ``BertModel`` (embeddings, post-norm encoder, pooler) on ``seq`` tokens."""
    n = _Net()
    n.add("embedding", vocab=vocab, dim=d)
    n.add("positional_embedding", rows=max_positions)
    n.add("positional_embedding", name="token_type_embedding", rows=type_vocab, token_types=True)
    n.add("layernorm", eps=eps); n.add("dropout", p=0.1)
    for _ in range(depth):
        _encoder_block(n, d, heads, ffn, pre_norm=False, eps=eps, act=act, approximate=approximate)
    n.add("select", index=0); n.add("linear", name="pooler", out=d); n.add("tanh")
    return _spec(name, (seq,), n, loss="mse", optimizer="adamw", format=format)


def _bert_base(seq=None):
    return bert_spec("bert-base", d=768, depth=12, heads=12, ffn=3072, vocab=30522, max_positions=512,
                     type_vocab=2, seq=seq or 512)


def _lm_head(n, vocab, tied_to, logits):
    """The LM head over every position (``logits="all"``, a training or scoring forward) or over
    the last one only (``"last"``: serving computes the next token's logits from the last
    position, as vLLM does and Hugging Face ``generate`` does with ``logits_to_keep=1``)."""
    if logits == "last":
        n.add("select", name="last_token", index=-1)
    n.add("linear", name="lm_head", out=vocab, bias=False, **({"tied_to": tied_to} if tied_to else {}))


def _step_fields(past, kv_cache):
    """Attention fields of a forward that keeps a KV cache and/or reads ``past`` cached tokens."""
    return {**({"past": past} if past else {}), **({"kv_cache": True} if kv_cache else {})}


def gpt2_spec(name, *, d, depth, heads, vocab, context, seq, ffn=None, eps=1e-5, act="gelu", approximate="tanh",
              tied=True, past=0, kv_cache=False, logits="all", format=None):
    """HF ``GPT2LMHeadModel``: token and position embeddings, pre-norm blocks with causal
    attention, final layernorm, LM head (tied to the token embedding unless ``tied`` is false).
    ``seq`` new tokens after ``past`` cached ones (their keys and values are read from the KV
    cache; ``kv_cache`` marks a forward that stores its own); ``logits`` "all" or "last"."""
    n = _Net()
    wte = n.add("embedding", name="wte", vocab=vocab, dim=d)
    n.add("positional_embedding", name="wpe", rows=context, **({"offset": past} if past else {}))
    n.add("dropout", p=0.1)
    for _ in range(depth):
        _encoder_block(n, d, heads, ffn or 4 * d, pre_norm=True, act=act, approximate=approximate, causal=True,
                       eps=eps, attention=_step_fields(past, kv_cache))
    n.add("layernorm", name="ln_f", eps=eps)
    _lm_head(n, vocab, wte if tied else None, logits)
    return _spec(name, (seq,), n, optimizer="adamw", format=format)


_GPT = {"gpt2": (768, 12, 12), "gpt2-medium": (1024, 24, 16), "gpt2-large": (1280, 36, 20),
        "gpt2-xl": (1600, 48, 25), "gpt3-175b": (12288, 96, 96)}


def _gpt(name, seq=None, **step):
    d, depth, heads = _GPT[name]
    context = 2048 if name == "gpt3-175b" else 1024
    return gpt2_spec(name, d=d, depth=depth, heads=heads, vocab=50257, context=context, seq=seq or context, **step)


def llama_spec(name, *, d, depth, heads, kv_heads, ffn, vocab, seq, eps=1e-5, tied=False, act="silu",
               attention_bias=False, mlp_bias=False, out_bias=None, head_dim=None, window=None, experts=None,
               top_k=None, past=0, kv_cache=False, logits="all", format=None):
    """HF ``LlamaForCausalLM`` (also Mistral, Qwen2, Mixtral): RMSNorm pre-norm blocks, rotary
    causal attention with grouped-query heads (a sliding ``window`` of keys for Mistral v0.1),
    gated MLP down(act(gate(x)) * up(x)) or, with ``experts``, a mixture of experts choosing
    ``top_k`` per token (Mixtral), final RMSNorm, LM head. ``seq`` new tokens after ``past``
    cached ones; ``kv_cache`` marks a forward that stores its keys and values; ``logits`` "all"
    or "last" (see ``_lm_head``)."""
    n = _Net()
    embed = n.add("embedding", name="embed_tokens", vocab=vocab, dim=d)
    attention = {"heads": heads, "kv_heads": kv_heads, "bias": attention_bias, "rope": True, "causal": True,
                 **({"out_bias": out_bias} if out_bias is not None and out_bias != attention_bias else {}),
                 **({"head_dim": head_dim} if head_dim is not None else {}),
                 **({"window": window} if window is not None else {}), **_step_fields(past, kv_cache)}
    for _ in range(depth):
        entry = n.last
        n.add("rmsnorm", eps=eps)
        n.add("attention", **attention)
        mid = n.add("add", inputs=[n.last, entry])
        normed = n.add("rmsnorm", eps=eps)
        if experts:
            n.add("moe", experts=experts, top_k=top_k, ffn=ffn, act=act, bias=mlp_bias)
        else:
            n.add("linear", out=ffn, bias=mlp_bias); gate = n.add(act)
            n.at(normed); up = n.add("linear", out=ffn, bias=mlp_bias)
            n.add("mul", inputs=[gate, up]); n.add("linear", out=d, bias=mlp_bias)
        n.add("add", inputs=[n.last, mid])
    n.add("rmsnorm", eps=eps)
    _lm_head(n, vocab, embed if tied else None, logits)
    return _spec(name, (seq,), n, optimizer="adamw", format=format)


#: d, layers, heads, kv_heads, ffn, vocab, context, rms eps, sliding window, experts, top k
_LLAMA = {"llama2-7b": (4096, 32, 32, 32, 11008, 32000, 4096, 1e-5, None, None, None),
          "llama2-13b": (5120, 40, 40, 40, 13824, 32000, 4096, 1e-5, None, None, None),
          "llama2-70b": (8192, 80, 64, 8, 28672, 32000, 4096, 1e-5, None, None, None),
          # mistralai/Mistral-7B-v0.1 and Mixtral-8x7B-v0.1 config.json
          "mistral-7b": (4096, 32, 32, 8, 14336, 32000, 32768, 1e-5, 4096, None, None),
          "mixtral-8x7b": (4096, 32, 32, 8, 14336, 32000, 32768, 1e-5, None, 8, 2)}


def _llama(name, seq=None, **step):
    d, depth, heads, kv_heads, ffn, vocab, context, eps, window, experts, top_k = _LLAMA[name]
    return llama_spec(name, d=d, depth=depth, heads=heads, kv_heads=kv_heads, ffn=ffn, vocab=vocab,
                      seq=seq or context, eps=eps, window=window, experts=experts, top_k=top_k, **step)


def t5_spec(name, *, d, depth, heads, d_kv, ffn, vocab, seq, target=None, eps=1e-6, buckets=32, format=None,
            decoder_depth=None, act="relu", approximate="none", gated=False, tied=True, dropout=0.1):
    """HF ``T5ForConditionalGeneration`` (T5 v1.0: ReLU feed-forward, tied embeddings): a shared
    token embedding; an encoder of ``depth`` blocks (RMS-style T5LayerNorm, self-attention without
    score scaling, an additive relative-position bias, a ReLU MLP); a decoder of ``depth`` blocks
    (causal self-attention with its own bias table, cross-attention to the encoder output, MLP);
    final norms; the LM head tied to the embedding, its input scaled by d**-0.5. The first block
    of each stack owns its relative-attention bias table (``buckets`` x heads), the others share
    it; the bucket lookup is free, the bias add is counted in every layer's scores (cross-attention
    adds the encoder's padding mask there, as Hugging Face does). ``seq`` encoder tokens, ``target``
    decoder tokens (default ``seq``); the decoder's token ids, the model's second input stream,
    are written as a free ``shape_op`` of the input. Dropout 0.1 as in the t5-small config.
    T5 v1.1 and Flan-T5 (``gated``: the gated feed-forward act(wi_0 x) * wi_1 x with gelu_new,
    ``tied`` false: an LM head of its own, no input scaling) are the same with those changes."""
    target = target or seq
    decoder_depth = decoder_depth or depth
    n = _Net()
    shared = n.add("embedding", name="shared", vocab=vocab, dim=d)
    attention = {"heads": heads, "head_dim": d_kv, "bias": False, "scale": False, "buckets": buckets}

    def feed_forward(mid):
        normed = n.add("rmsnorm", eps=eps)
        n.add("linear", out=ffn, bias=False)
        n.add(act, **({"approximate": approximate} if act == "gelu" else {}))
        if gated:
            hidden = n.last
            n.at(normed); up = n.add("linear", out=ffn, bias=False)
            n.add("mul", inputs=[hidden, up])
        if dropout:
            n.add("dropout", p=dropout)
        n.add("linear", out=d, bias=False)
        if dropout:
            n.add("dropout", p=dropout)
        n.add("add", inputs=[n.last, mid])

    def drop():
        if dropout:
            n.add("dropout", p=dropout)

    drop()
    for i in range(depth):
        entry = n.last
        n.add("rmsnorm", eps=eps)
        n.add("attention", name=f"encoder{i}_attention", position_bias="own" if i == 0 else "shared", **attention)
        drop()
        feed_forward(n.add("add", inputs=[n.last, entry]))
    encoded = n.add("rmsnorm", name="encoder_final_norm", eps=eps)
    if dropout:
        encoded = n.add("dropout", p=dropout)
    n.add("shape_op", name="decoder_input_ids", inputs=["input"], out_shape=[target], op="decoder_input_ids")
    n.add("embedding", name="decoder_embed", vocab=vocab, dim=d, tied_to=shared)
    drop()
    for i in range(decoder_depth):
        entry = n.last
        n.add("rmsnorm", eps=eps)
        n.add("attention", name=f"decoder{i}_self_attention", causal=True,
              position_bias="own" if i == 0 else "shared", **attention)
        drop()
        mid = n.add("add", inputs=[n.last, entry])
        n.add("rmsnorm", eps=eps)
        n.add("attention", name=f"decoder{i}_cross_attention", inputs=[n.last, encoded], mask="additive",
              **attention)
        drop()
        feed_forward(n.add("add", inputs=[n.last, mid]))
    n.add("rmsnorm", name="decoder_final_norm", eps=eps)
    drop()
    if tied:
        n.add("elementwise", name="lm_scale", ops={"mul": 1}, backward={"mul": 1}, op="mul_d_model_rsqrt")
    n.add("linear", name="lm_head", out=vocab, bias=False, **({"tied_to": shared} if tied else {}))
    return _spec(name, (seq,), n, optimizer="adamw", format=format)


def _t5_small(seq=None):
    return t5_spec("t5-small", d=512, depth=6, heads=8, d_kv=64, ffn=2048, vocab=32128, seq=seq or 512)


# --- the paper's experiment sets ----------------------------------------------------------------

def _lstm_lm(seq=None):
    """Zaremba et al. 2014's medium word-level LSTM on Penn Treebank, as PyTorch's
    ``examples/word_language_model`` ``RNNModel`` builds it (``--model LSTM --emsize 650 --nhid 650
    --nlayers 2 --dropout 0.5``, untied): embedding 10,000 x 650, dropout, a 2-layer LSTM of 650
    with dropout 0.5 between the layers, dropout, decoder 650 -> 10,000; 35 time steps (its
    ``--bptt``); 19,780,400 parameters."""
    n = _Net()
    n.add("embedding", name="encoder", vocab=10000, dim=650)
    n.add("dropout", name="drop_in", p=0.5)
    n.add("lstm", name="rnn", hidden=650, layers=2, dropout=0.5)
    n.add("dropout", name="drop_out", p=0.5)
    n.add("linear", name="decoder", out=10000)
    return _spec("lstm-lm", [seq or 35], n)


def _li2022_mlp(width, act):
    n = _Net()
    for _ in range(3):
        n.add("linear", out=width); n.add(act)
    n.add("linear", out=1)
    return _spec(f"li2022-mlp-{width}-{act}", (4,), n, loss="mse")


def _li2022_cnn(depth):
    n = _Net()
    kernel = 3 if depth <= 6 else depth - 3
    for _ in range(depth):
        n.add("conv2d", out=32, kernel=kernel); n.add("gelu")
    n.add("global_avgpool"); n.add("linear", out=2)
    return _spec(f"li2022-cnn-{depth}", (3, 256, 256), n)


_MLP_WIDTHS, _MLP_ACTS, _CNN_DEPTHS = range(4, 19), ("sigmoid", "tanh", "gelu"), range(2, 11)


def _registry():
    table = {"lenet5": _lenet5, "alexnet": _alexnet, "mobilenet_v2": _mobilenet_v2,
             "squeezenet1_0": lambda: _squeezenet("1_0"), "squeezenet1_1": lambda: _squeezenet("1_1"),
             "googlenet": _googlenet, "densenet121": _densenet121, "vit_b_16": _vit_b16, "bert-base": _bert_base,
             "t5-small": _t5_small, "lstm-lm": _lstm_lm}
    for depth in _VGG:
        table[f"vgg{depth}"] = (lambda d: lambda: _vgg(d))(depth)
    for depth in _RESNET:
        table[f"resnet{depth}"] = (lambda d: lambda: _resnet(d))(depth)
    for name in _GPT:
        table[name] = (lambda m: lambda seq=None, **step: _gpt(m, seq, **step))(name)
    for name in _LLAMA:
        table[name] = (lambda m: lambda seq=None, **step: _llama(m, seq, **step))(name)
    for width in _MLP_WIDTHS:
        for act in _MLP_ACTS:
            table[f"li2022-mlp-{width}-{act}"] = (lambda w, a: lambda: _li2022_mlp(w, a))(width, act)
    for depth in _CNN_DEPTHS:
        table[f"li2022-cnn-{depth}"] = (lambda d: lambda: _li2022_cnn(d))(depth)
    return table


_BUILDERS = _registry()
_SEQUENCE_MODELS = {"bert-base", "t5-small", "lstm-lm", *_GPT, *_LLAMA}
#: Causal language models: these can be counted one serving step at a time (prefill, decode).
CAUSAL_LMS = frozenset({*_GPT, *_LLAMA})

#: where each family's reference numbers come from
ZOO_SOURCES = {
    "vision": "torchvision.models (parameters); torchvision model docs 'GFLOPS' column (MACs)",
    "bert-base": "Hugging Face transformers BertModel, bert-base-uncased config",
    "gpt2": "Hugging Face transformers GPT2LMHeadModel configs gpt2, gpt2-medium, gpt2-large, gpt2-xl",
    "llama2": "Hugging Face transformers LlamaForCausalLM, meta-llama/Llama-2 configs",
    "mistral-7b": "Hugging Face transformers MistralForCausalLM, mistralai/Mistral-7B-v0.1 config",
    "mixtral-8x7b": "Hugging Face transformers MixtralForCausalLM, mistralai/Mixtral-8x7B-v0.1 config",
    "t5-small": "Hugging Face transformers T5ForConditionalGeneration, t5-small config",
    "lstm-lm": "Zaremba et al. 2014 medium PTB LSTM, as pytorch/examples word_language_model's RNNModel",
    "gpt3-175b": "Brown et al. 2020, Table 2.1, on the GPT-2 architecture",
    "li2022": "li2022 section III, Table II",
}


def zoo_names() -> list[str]:
    """Names accepted by ``zoo:NAME``, sorted."""
    return sorted(_BUILDERS)


def _known_names():
    """Every zoo name, the paper's experiment sets written as patterns, for one-line errors."""
    named = [n for n in zoo_names() if not n.startswith(("li2022-mlp-", "li2022-cnn-"))]
    mlp = (f"li2022-mlp-{{{_MLP_WIDTHS[0]}..{_MLP_WIDTHS[-1]}}}-{{{','.join(_MLP_ACTS)}}}")
    cnn = f"li2022-cnn-{{{_CNN_DEPTHS[0]}..{_CNN_DEPTHS[-1]}}}"
    return ", ".join(named + [mlp, cnn])


def _close_to(name):
    import difflib
    close = difflib.get_close_matches(str(name), zoo_names(), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def load_zoo(name: str, *, seq: int | None = None, past: int = 0, kv_cache: bool = False,
             logits: str = "all") -> ModelIR:
    """Build zoo model ``name`` as a ModelIR; ``seq`` sets the sequence length of the
    transformer language models (default: their full context). For the causal language models
    (GPT, LLaMA, Mistral, Mixtral) a serving step can be built: ``seq`` new tokens after ``past``
    cached ones, ``kv_cache`` (the step stores its keys and values) and ``logits`` ("all", or
    "last": the LM head on the last position only)."""
    if name not in _BUILDERS:
        raise ModelError(f"zoo:{name}: unknown zoo model (known: {_known_names()}{_close_to(name)})")
    builder = _BUILDERS[name]
    step = {key: value for key, value in (("past", past), ("kv_cache", kv_cache), ("logits", logits))
            if value != {"past": 0, "kv_cache": False, "logits": "all"}[key]}
    if step and name not in CAUSAL_LMS:
        raise ModelError(f"zoo:{name}: not a causal language model, so it has no serving step (prefill, decode) "
                         "to build")
    if seq is not None:
        if name not in _SEQUENCE_MODELS:
            raise ModelError(f"zoo:{name}: has no sequence length to set")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ModelError(f"zoo:{name}: sequence length must be a positive integer, not {seq!r}")
        spec = builder(seq=seq, **step)
    else:
        spec = builder(**step)
    return spec_to_model(spec, source=f"zoo:{name}", default_name=name)
