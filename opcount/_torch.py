"""The PyTorch frontend (optional extra): an ``nn.Module`` to a ModelIR through ``torch.fx``.

The module is traced with ``torch.fx.symbolic_trace`` and run once on an example input (first
dimension the batch) with ``ShapeProp`` to get every tensor's shape. Standard modules (Linear,
Conv*, ConvTranspose*, pools, norms, Embedding, Dropout, activations, Flatten, Identity,
MultiheadAttention for self-attention) and functions (add, mul, sub, div, matmul, cat, relu,
gelu, softmax, scaled_dot_product_attention, ...) map to layer types; view/reshape/permute/
indexing are free shape operations; anything else becomes an uncounted layer and the result is
incomplete. Parameters are counted from the modules, so they equal
``sum(p.numel() for p in module.parameters())`` for the mapped modules.
"""
import operator

from ._ir import ModelError, build_model

__all__ = ["load_torch"]


def _per_sample(node, where):
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        raise ModelError(f"{where}: output is not a single tensor")
    shape = tuple(int(d) for d in meta.shape)
    if len(shape) < 2:
        raise ModelError(f"{where}: output {list(shape)} has no per-sample dimensions")
    return shape[1:]


def _tuple(value, n):
    return list(value) if isinstance(value, (tuple, list)) else [value] * n


def _module_spec(module, nn, where, in_rank):
    """Layer spec of a standard module, or None if it is not one we know."""
    m = module
    if isinstance(m, nn.Linear):
        return {"type": "linear", "out": m.out_features, "bias": m.bias is not None}
    conv_types = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
    tconv_types = {nn.ConvTranspose1d: 1, nn.ConvTranspose2d: 2, nn.ConvTranspose3d: 3}
    for cls, nd in list(conv_types.items()) + list(tconv_types.items()):
        if type(m) is cls:
            if m.padding_mode != "zeros":
                raise ModelError(f"{where}: padding_mode {m.padding_mode!r} is not supported")
            padding = m.padding
            if padding == "valid":
                padding = 0
            spec = {"type": f"conv{nd}d" if cls in conv_types else f"conv_transpose{nd}d",
                    "out": m.out_channels, "kernel": list(m.kernel_size), "stride": list(m.stride),
                    "padding": padding if padding == "same" else list(_tuple(padding, nd)),
                    "dilation": list(m.dilation), "groups": m.groups, "bias": m.bias is not None}
            if cls in tconv_types:
                spec["output_padding"] = list(m.output_padding)
            return spec
    for prefix, classes in (("maxpool", (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)),
                            ("avgpool", (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d))):
        for nd, cls in enumerate(classes, start=1):
            if type(m) is cls:
                spec = {"type": f"{prefix}{nd}d", "kernel": _tuple(m.kernel_size, nd),
                        "stride": _tuple(m.stride if m.stride is not None else m.kernel_size, nd),
                        "padding": _tuple(m.padding, nd), "ceil_mode": bool(m.ceil_mode)}
                if prefix == "maxpool":
                    spec["dilation"] = _tuple(m.dilation, nd)
                return spec
    for prefix, classes in (("adaptive_avgpool", (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)),
                            ("adaptive_maxpool", (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d))):
        for nd, cls in enumerate(classes, start=1):
            if type(m) is cls:
                return {"type": f"{prefix}{nd}d", "out": _tuple(m.output_size, nd)}
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        return {"type": "batchnorm", "affine": m.affine, "eps": m.eps}
    if isinstance(m, nn.LayerNorm):
        return {"type": "layernorm", "dims": len(m.normalized_shape), "affine": m.elementwise_affine,
                "bias": m.bias is not None, "eps": m.eps}
    if hasattr(nn, "RMSNorm") and isinstance(m, nn.RMSNorm):
        return {"type": "rmsnorm", "dims": len(m.normalized_shape), "affine": m.elementwise_affine}
    if isinstance(m, nn.GroupNorm):
        return {"type": "groupnorm", "groups": m.num_groups, "affine": m.affine, "eps": m.eps}
    if isinstance(m, nn.Embedding):
        return {"type": "embedding", "vocab": m.num_embeddings, "dim": m.embedding_dim}
    if isinstance(m, nn.Dropout):
        return {"type": "dropout", "p": m.p}
    simple = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.SiLU: "silu",
              nn.Identity: "identity"}
    for cls, name in simple.items():
        if type(m) is cls:
            return {"type": name}
    if isinstance(m, nn.LeakyReLU):
        return {"type": "leaky_relu", "slope": m.negative_slope}
    if isinstance(m, nn.GELU):
        return {"type": "gelu", "approximate": m.approximate}
    if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
        dim = -1 if m.dim is None else m.dim
        if dim == 0 or dim == -in_rank:
            raise ModelError(f"{where}: softmax over the batch dimension is not supported")
        return {"type": "softmax" if isinstance(m, nn.Softmax) else "log_softmax", "axis": dim - 1 if dim > 0 else dim}
    if isinstance(m, nn.Flatten):
        if m.end_dim != -1 or m.start_dim < 1:
            return None
        return {"type": "flatten", "start": m.start_dim - 1}
    if isinstance(m, nn.MultiheadAttention):
        if not m.batch_first or not m._qkv_same_embed_dim:
            raise ModelError(f"{where}: MultiheadAttention needs batch_first=True and equal q/k/v dims")
        return {"type": "attention", "heads": m.num_heads, "bias": m.in_proj_bias is not None}
    return None


def load_torch(module, example_input, *, name=None, loss="mse", optimizer="sgd"):
    """Trace ``module`` on ``example_input`` (a tensor whose first dimension is the batch)."""
    import torch
    from torch import fx, nn
    from torch.fx.passes.shape_prop import ShapeProp
    import torch.nn.functional as F
    label = name or type(module).__name__
    try:
        gm = fx.symbolic_trace(module)
    except Exception as exc:
        raise ModelError(f"{label}: torch.fx cannot trace the module: {' '.join(str(exc).split())}") from None
    ShapeProp(gm).propagate(example_input)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ModelError(f"{label}: expected one input, found {len(placeholders)}")
    layer_of = {placeholders[0]: "input"}
    specs = []
    modules = dict(gm.named_modules())
    fn_types = {F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
                torch.tanh: "tanh", F.tanh: "tanh", F.silu: "silu", F.gelu: "gelu", F.leaky_relu: "leaky_relu"}
    arith = {operator.add: "add", torch.add: "add", operator.mul: "mul", torch.mul: "mul", operator.sub: "sub",
             torch.sub: "sub", operator.truediv: "div", torch.div: "div"}
    free_methods = {"view", "reshape", "permute", "transpose", "contiguous", "squeeze", "unsqueeze", "flatten",
                    "expand", "chunk", "split", "repeat", "flip"}
    free_functions = {torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.squeeze, torch.unsqueeze,
                      operator.getitem}
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        where = f"{label}: layer {node.name!r}"
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            continue                                   # sizes, tuples: no arithmetic
        tensor_args = [a for a in node.args if isinstance(a, fx.Node) and a in layer_of]
        if node.target is torch.cat:
            tensor_args = [a for a in node.args[0] if isinstance(a, fx.Node)]
        refs = [layer_of[a] for a in tensor_args]
        out_shape = list(_per_sample(node, where))
        spec = None
        in_rank = len(tensor_args[0].meta["tensor_meta"].shape) if tensor_args else 0
        if node.op == "call_module":
            module_ = modules[node.target]
            if isinstance(module_, nn.MultiheadAttention):
                refs = refs[:1]
            spec = _module_spec(module_, nn, where, in_rank)
            if spec is None:
                spec = {"type": type(module_).__name__, "out_shape": out_shape,
                        "params": sum(p.numel() for p in module_.parameters())}
        elif node.target in fn_types:
            spec = {"type": fn_types[node.target]}
            if node.target is F.gelu:
                spec["approximate"] = node.kwargs.get("approximate", "none")
        elif node.target in (torch.softmax, F.softmax, F.log_softmax, torch.log_softmax) or (
                node.op == "call_method" and node.target in ("softmax", "log_softmax")):
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else -1)
            kind = "log_softmax" if "log" in getattr(node.target, "__name__", str(node.target)) else "softmax"
            spec = {"type": kind, "axis": dim - 1 if dim > 0 else dim}
        elif node.target in arith or (node.op == "call_method" and node.target in ("add", "mul", "sub", "div")):
            op = arith.get(node.target, node.target)
            shapes = [tuple(a.meta["tensor_meta"].shape) for a in tensor_args]
            if op in ("add", "mul") and len(tensor_args) == 2 and shapes[0] == shapes[1] and refs[0] != refs[1]:
                spec = {"type": op}
            else:
                backward = {"add": {}, "sub": {"sub": 1}, "mul": {"mul": len(tensor_args)},
                            "div": {"div": 1} if len(tensor_args) == 1 else {"div": 2, "mul": 1, "sub": 1}}[op]
                spec = {"type": "elementwise", "op": op, "ops": {op: 1}, "backward": backward,
                        "out_shape": out_shape}
        elif node.target in (torch.matmul, operator.matmul, torch.bmm) or (
                node.op == "call_method" and node.target in ("matmul", "bmm")):
            spec = {"type": "matmul"}
        elif node.target is torch.cat:
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
            spec = {"type": "concat", "axis": dim - 1 if dim > 0 else dim}
        elif node.target is F.scaled_dot_product_attention:
            causal = bool(node.kwargs.get("is_causal", False))
            spec = {"type": "sdpa", "causal": causal}
            if node.kwargs.get("attn_mask") is not None:
                spec = {"type": "sdpa", "mask": "additive"}
        elif node.target in free_functions or (node.op == "call_method" and node.target in free_methods):
            spec = {"type": "shape_op", "op": str(getattr(node.target, "__name__", node.target)),
                    "out_shape": out_shape}
        else:
            spec = {"type": str(getattr(node.target, "__name__", node.target)), "out_shape": out_shape}
        spec["name"] = node.name
        spec["inputs"] = refs or ["input"]
        specs.append(spec)
        layer_of[node] = node.name
    shape = tuple(int(d) for d in example_input.shape)
    if len(shape) < 2:
        raise ModelError(f"{label}: the example input needs a batch dimension and per-sample dimensions")
    ir = build_model(name=label, input_shape=shape[1:], layers=specs, loss=loss, optimizer=optimizer, source=label)
    for layer, node in zip(ir.layers, [n for n in gm.graph.nodes if n.name in {s["name"] for s in specs}]):
        want = _per_sample(node, f"{label}: layer {node.name!r}")
        if layer.out_shape != want:
            raise ModelError(f"{label}: layer {layer.name!r} ({layer.type}): shape mismatch: inferred "
                             f"{list(layer.out_shape)}, torch says {list(want)}")
    return ir
