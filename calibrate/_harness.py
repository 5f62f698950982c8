"""The measurement harness: run a model with PyTorch on generated data around an energy counter.

Only sequential models are built (each layer reads the previous one; ``sdpa`` may read it as
query, key and value at once: self-attention without projections), from these layer types:
linear, conv1d/2d/3d, relu, sigmoid, tanh, gelu, silu, softmax, maxpool2d, avgpool2d,
global_avgpool, adaptive_avgpool2d, flatten, dropout, layernorm, batchnorm, attention
(``torch.nn.MultiheadAttention``: kv_heads = heads, no rope, no mask) and sdpa
(``scaled_dot_product_attention``, no mask or causal). Anything else is refused with the layer
named, because a model that ran something else than what is counted would calibrate nothing.

Inputs are standard-normal tensors and targets random (normal for mse, uniform class indices for
cross_entropy, 0/1 for bce), generated once with a seeded generator before the counter starts, so
the counter sees the computation only. The workload follows the measurement CSV's definition
(``calibrate.workload_steps``): per epoch ``samples // batch`` full steps and one partial step, or
``passes`` steps of ``batch``. Inference runs the forward pass under ``torch.no_grad``; validation
adds the loss; training adds backward and the optimizer step.
"""
from __future__ import annotations

import datetime
import math
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn

from ._counters import EnergyCounter, EnergyMeter
from ._measurements import MeasurementError, workload_steps

if TYPE_CHECKING:
    import torch

__all__ = ["require_torch", "build_torch_module", "measure_runs", "iter_runs", "measure_forward", "time_forward", "TORCH_LAYERS"]

TORCH_LAYERS = ("linear", "conv1d", "conv2d", "conv3d", "relu", "sigmoid", "tanh", "gelu", "silu", "softmax",
                "maxpool2d", "avgpool2d", "global_avgpool", "adaptive_avgpool2d", "flatten", "dropout",
                "layernorm", "batchnorm", "attention", "sdpa")


def require_torch() -> Any:
    """The ``torch`` module; :class:`MeasurementError` naming the install command when PyTorch
    is not installed (torch is an optional dependency: ``pip install 'tosim[torch]'``)."""
    try:
        import torch
    except ImportError:
        raise MeasurementError("tosim measure needs PyTorch (pip install 'tosim[torch]')") from None
    return torch


def build_torch_module(model: Any) -> torch.nn.Sequential:
    """A ``torch.nn.Sequential`` equal in structure to an opcount ModelIR."""
    torch = require_torch()
    nn = torch.nn
    _modules(torch)
    modules = []
    previous = "input"
    for layer in model.layers:
        a = layer.attrs
        t = layer.type
        reads = (previous,) * 3 if t == "sdpa" else (previous,)
        if tuple(layer.inputs) != reads:
            raise MeasurementError(f"{model.name}: layer {layer.name!r} reads {', '.join(layer.inputs)}; "
                                   f"measure runs sequential models only")
        previous = layer.name
        if t == "linear":
            modules.append(nn.Linear(a["in"], a["out"], bias=a.get("bias", True)))
        elif t in ("conv1d", "conv2d", "conv3d") and not a.get("transposed"):
            cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[a["nd"]]
            modules.append(cls(a["in"], a["out"], a["kernel"], stride=a["stride"], padding=a["padding"],
                               dilation=a["dilation"], groups=a["groups"], bias=a["bias"]))
        elif t in ("relu", "sigmoid", "tanh", "silu"):
            modules.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "silu": nn.SiLU}[t]())
        elif t == "gelu":
            modules.append(nn.GELU(approximate=a.get("approximate", "none")))
        elif t in ("maxpool2d", "avgpool2d"):
            if t == "maxpool2d":
                modules.append(nn.MaxPool2d(a["kernel"], stride=a["stride"], padding=a["padding"],
                                            dilation=a["dilation"]))
            else:
                modules.append(nn.AvgPool2d(a["kernel"], stride=a["stride"], padding=a["padding"]))
        elif t == "global_avgpool":
            nd = len(layer.in_shape) - 1
            modules.append(nn.Sequential(
                {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[nd](1),
                nn.Flatten()))
        elif t == "adaptive_avgpool2d":
            modules.append(nn.AdaptiveAvgPool2d(tuple(layer.out_shape[1:])))
        elif t == "flatten":
            modules.append(nn.Flatten())
        elif t == "dropout":
            modules.append(nn.Dropout(a.get("p", 0.5)))
        elif t == "softmax":
            axis = a["axis"]
            modules.append(nn.Softmax(dim=axis if axis < 0 else axis + 1))      # + 1: the batch dimension
        elif t == "layernorm":
            shape = tuple(layer.in_shape)
            dims = next(k for k in range(1, len(shape) + 1) if math.prod(shape[-k:]) == a["group"])
            modules.append(nn.LayerNorm(shape[-dims:], elementwise_affine=a["affine"], bias=a["bias"]))
        elif t == "batchnorm":
            if a["affine"] and not a["bias"]:
                _refuse(model, layer, "torch's BatchNorm has no affine without bias")
            rank = len(layer.in_shape) + 1          # with the batch dimension
            cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}.get(rank)
            if cls is None:
                _refuse(model, layer, f"no torch BatchNorm for input shape {list(layer.in_shape)}")
            modules.append(cls(layer.in_shape[0], affine=a["affine"]))
        elif t == "attention":
            if a["kv_heads"] != a["heads"] or a["rope"] or a["mask"] != "none":
                _refuse(model, layer, "torch's MultiheadAttention runs no grouped-query attention, rope or mask "
                                      "as counted")
            modules.append(_SelfAttention(nn.MultiheadAttention(a["dim"], a["heads"], bias=a["bias"],
                                                                batch_first=True)))
        elif t == "sdpa":
            if a["mask"] == "additive":
                _refuse(model, layer, "an additive mask is not generated")
            modules.append(_ScaledDotProduct(causal=a["mask"] == "causal"))
        else:
            raise MeasurementError(f"{model.name}: layer {layer.name!r} of type {t!r} cannot be built "
                                   f"for measurement (supported: {', '.join(TORCH_LAYERS)})")
    return nn.Sequential(*modules)


def _refuse(model, layer, reason) -> NoReturn:
    raise MeasurementError(f"{model.name}: layer {layer.name!r} of type {layer.type!r} cannot be built for "
                           f"measurement: {reason}")


def _modules(torch):
    """The two wrapper modules (defined once torch is imported)."""
    global _SelfAttention, _ScaledDotProduct
    if _SelfAttention is not None:
        return

    class SelfAttention(torch.nn.Module):
        """``attention`` of a model spec: x is query, key and value; the output only."""

        def __init__(self, mha):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    class ScaledDotProduct(torch.nn.Module):
        """``sdpa`` reading one tensor [N, heads, T, head_dim] as query, key and value."""

        def __init__(self, causal):
            super().__init__()
            self.causal = causal

        def forward(self, x):
            return torch.nn.functional.scaled_dot_product_attention(x, x, x, is_causal=self.causal)

    _SelfAttention, _ScaledDotProduct = SelfAttention, ScaledDotProduct


_SelfAttention: Any = None           # torch module classes, defined on first use (_modules)
_ScaledDotProduct: Any = None


def _sync(torch, device):
    """Wait for ``device``'s queued work (a CUDA device is asynchronous); nothing on a CPU."""
    if str(device).startswith("cuda"):
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _loss(model, torch):
    nn = torch.nn
    return {"mse": nn.MSELoss, "cross_entropy": nn.CrossEntropyLoss, "bce": nn.BCEWithLogitsLoss}[model.loss]()


def _optimizer(model, params, torch):
    o = torch.optim
    return {"sgd": lambda: o.SGD(params, lr=1e-3),
            "momentum": lambda: o.SGD(params, lr=1e-3, momentum=0.9),
            "adam": lambda: o.Adam(params, lr=1e-3),
            "adamw": lambda: o.AdamW(params, lr=1e-3)}[model.optimizer]()


def _targets(model, n, generator, torch, device):
    shape = (n,) + tuple(model.output_shape)
    if model.loss == "cross_entropy":
        return torch.randint(0, model.output_shape[0], (n,), generator=generator).to(device)
    if model.loss == "bce":
        return torch.randint(0, 2, shape, generator=generator).float().to(device)
    return torch.randn(shape, generator=generator).to(device)


def measure_runs(model: Any, counter: EnergyCounter, **options: Any) -> list[dict[str, Any]]:
    """Run ``repeat`` measured runs; one measurement-CSV row (a dict) per run: the list of
    :func:`iter_runs`."""
    return list(iter_runs(model, counter, **options))


def iter_runs(model: Any, counter: EnergyCounter, *, model_name: str, phase: str = "training", batch: int = 1,
              samples: int | None = None, passes: int | None = None, epochs: int = 1, repeat: int = 1,
              torch_device: str = "cpu", seed: int = 0, interval: float = 5.0,
              warmup: bool = True) -> Iterator[dict[str, Any]]:
    """Run ``repeat`` measured runs, yielding one measurement-CSV row (a dict) per run as it ends
    (a counter failure in a later run leaves the earlier rows with the caller).

    Each row has the CSV's columns (model, energy_j, phase, batch, samples, epochs, passes) plus
    ``device`` (the counter's channels), ``seconds`` and ``date``. ``energy_j`` is the counter's
    joules over the run, summed over its channels, with no idle power subtracted (the fitted
    intercept absorbs the fixed part, as in li2022).
    """
    torch = require_torch()
    steps = workload_steps(batch, samples, passes)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = build_torch_module(model).to(torch_device)
    loss_fn = _loss(model, torch)
    optimizer = _optimizer(model, net.parameters(), torch)
    largest = max(b for b, _ in steps)
    x = torch.randn((largest,) + tuple(model.input_shape), generator=generator).to(torch_device)
    y = _targets(model, largest, generator, torch, torch_device)
    sync = _sync(torch, torch_device)

    def one_step(b):
        xb, yb = x[:b], y[:b]
        if phase == "training":
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            optimizer.step()
        else:
            with torch.no_grad():
                out = net(xb)
                if phase == "validation":
                    loss_fn(out, yb)

    net.train(phase == "training")
    if warmup:
        one_step(steps[0][0])
        sync()
    for _ in range(repeat):
        meter = EnergyMeter(counter, interval=interval)
        sync()
        meter.start()
        for _ in range(epochs):
            for b, count in steps:
                for _ in range(count):
                    one_step(b)
        sync()
        joules = sum(meter.stop())
        yield {"model": model_name, "energy_j": joules, "phase": phase, "batch": batch,
               "samples": samples if samples is not None else "",
               "epochs": epochs, "passes": passes if passes is not None else "",
               "device": "+".join(counter.channels), "seconds": round(meter.seconds, 6),
               "date": datetime.date.today().isoformat()}


def _forward_setup(model, batch, torch_device, seed):
    torch = require_torch()
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = build_torch_module(model).to(torch_device).eval()
    x = torch.randn((batch,) + tuple(model.input_shape), generator=generator).to(torch_device)
    sync = _sync(torch, torch_device)
    return torch, net, x, sync


def _passes(torch, net, x, sync, n):
    with torch.no_grad():
        for _ in range(n):
            net(x)
    sync()


def time_forward(model: Any, *, batch: int, torch_device: str = "cpu", seed: int = 0, min_seconds: float = 0.1,
                 clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per inference pass of ``model`` on ``batch`` samples: one warm-up pass, then
    doubling runs until one lasts ``min_seconds``."""
    torch, net, x, sync = _forward_setup(model, batch, torch_device, seed)
    return _time_passes(torch, net, x, sync, min_seconds, clock)


def _time_passes(torch, net, x, sync, min_seconds, clock):
    _passes(torch, net, x, sync, 1)
    n = 1
    while True:
        t0 = clock()
        _passes(torch, net, x, sync, n)
        elapsed = clock() - t0
        if elapsed >= min_seconds:
            return elapsed / n
        # aim past min_seconds at once when the run was long enough to time, else double
        n = max(2 * n, math.ceil(1.2 * n * min_seconds / elapsed)) if elapsed > 0 else 2 * n


def measure_forward(model: Any, counter: EnergyCounter, *, model_name: str, batch: int, run_seconds: float,
                    torch_device: str = "cpu", seed: int = 0, interval: float = 5.0,
                    timing_seconds: float | None = None,
                    clock: Callable[[], float] = time.perf_counter) -> tuple[dict[str, Any], float]:
    """One measured run of inference passes of one batch, lasting at least ``run_seconds`` (from
    :meth:`CounterProbe.run_seconds`, the counter's resolution). A short timing run
    (:func:`time_forward`) sizes chunks of about a tenth of the run; chunks run, each ended by a
    device synchronization, until the run is long enough, so a wrong timing estimate cannot make
    the run too short. Returns the measurement-CSV row (a dict, as :func:`iter_runs`: phase
    inference, ``passes`` the passes run, epochs 1) and the timing run's seconds per pass.
    ``timing_seconds`` defaults to a fifth of the run, at most 0.1 s: it only sizes the chunks."""
    if timing_seconds is None:
        timing_seconds = min(0.1, run_seconds / 5)
    torch, net, x, sync = _forward_setup(model, batch, torch_device, seed)
    per_pass = _time_passes(torch, net, x, sync, timing_seconds, clock)      # warms up the module too
    chunk = max(1, math.ceil(run_seconds / 10 / per_pass)) if per_pass > 0 else 1
    meter = EnergyMeter(counter, interval=interval, clock=clock)
    passes = 0
    meter.start()
    t0 = clock()
    while passes == 0 or clock() - t0 < run_seconds:
        _passes(torch, net, x, sync, chunk)
        passes += chunk
    joules = sum(meter.stop())
    return ({"model": model_name, "energy_j": joules, "phase": "inference", "batch": batch, "samples": "",
             "epochs": 1, "passes": passes, "device": "+".join(counter.channels), "seconds": round(meter.seconds, 6),
             "date": datetime.date.today().isoformat()}, per_pass)
