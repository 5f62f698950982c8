"""The measurement harness: run a model with PyTorch on generated data around an energy counter.

Only sequential models are built (each layer reads the previous one), from these layer types:
linear, conv1d/2d/3d, relu, sigmoid, tanh, gelu, silu, maxpool2d, avgpool2d, global_avgpool,
adaptive_avgpool2d, flatten, dropout. Anything else is refused with the layer named, because a
model that ran something else than what is counted would calibrate nothing.

Inputs are standard-normal tensors and targets random (normal for mse, uniform class indices for
cross_entropy, 0/1 for bce), generated once with a seeded generator before the counter starts, so
the counter sees the computation only. The workload follows the measurement CSV's definition
(``calibrate.workload_steps``): per epoch ``samples // batch`` full steps and one partial step, or
``passes`` steps of ``batch``. Inference runs the forward pass under ``torch.no_grad``; validation
adds the loss; training adds backward and the optimizer step.
"""
import datetime

from ._counters import EnergyMeter
from ._measurements import MeasurementError, workload_steps

__all__ = ["build_torch_module", "measure_runs", "TORCH_LAYERS"]

TORCH_LAYERS = ("linear", "conv1d", "conv2d", "conv3d", "relu", "sigmoid", "tanh", "gelu", "silu",
                "maxpool2d", "avgpool2d", "global_avgpool", "adaptive_avgpool2d", "flatten", "dropout")


def _torch():
    try:
        import torch
    except ImportError:
        raise MeasurementError("tosim measure needs PyTorch (pip install 'tosim[torch]')") from None
    return torch


def build_torch_module(model):
    """A ``torch.nn.Sequential`` equal in structure to an opcount ModelIR."""
    torch = _torch()
    nn = torch.nn
    modules = []
    previous = "input"
    for layer in model.layers:
        if tuple(layer.inputs) != (previous,):
            raise MeasurementError(f"{model.name}: layer {layer.name!r} reads {', '.join(layer.inputs)}; "
                                   f"measure runs sequential models only")
        previous = layer.name
        a = layer.attrs
        t = layer.type
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
        else:
            raise MeasurementError(f"{model.name}: layer {layer.name!r} of type {t!r} cannot be built "
                                   f"for measurement (supported: {', '.join(TORCH_LAYERS)})")
    return nn.Sequential(*modules)


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


def measure_runs(model, counter, *, model_name, phase="training", batch=1, samples=None, passes=None,
                 epochs=1, repeat=1, torch_device="cpu", seed=0, interval=5.0, warmup=True):
    """Run ``repeat`` measured runs; one measurement-CSV row (a dict) per run.

    Each row has the CSV's columns (model, energy_j, phase, batch, samples, epochs, passes) plus
    ``device`` (the counter's channels), ``seconds`` and ``date``. ``energy_j`` is the counter's
    joules over the run, summed over its channels, with no idle power subtracted (the fitted
    intercept absorbs the fixed part, as in li2022).
    """
    torch = _torch()
    steps = workload_steps(batch, samples, passes)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = build_torch_module(model).to(torch_device)
    loss_fn = _loss(model, torch)
    optimizer = _optimizer(model, net.parameters(), torch)
    largest = max(b for b, _ in steps)
    x = torch.randn((largest,) + tuple(model.input_shape), generator=generator).to(torch_device)
    y = _targets(model, largest, generator, torch, torch_device)
    sync = torch.cuda.synchronize if str(torch_device).startswith("cuda") else (lambda: None)

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
    rows = []
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
        rows.append({"model": model_name, "energy_j": joules, "phase": phase, "batch": batch,
                     "samples": samples if samples is not None else "",
                     "epochs": epochs, "passes": passes if passes is not None else "",
                     "device": "+".join(counter.channels), "seconds": round(meter.seconds, 6),
                     "date": datetime.date.today().isoformat()})
    return rows
