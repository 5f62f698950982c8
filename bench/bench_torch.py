"""``opcount.load_torch`` + count against ``torch.utils.flop_counter.FlopCounterMode`` on meta
tensors, side by side in one run, at batch 1 and 32 (target: no slower at any batch, and
independent of the batch).

    python bench/bench_torch.py [--repeat 3] [--models resnet18,vit_b_16,gpt2_small,lstm_lm]

The models are twins of torchvision's resnet18 and vit_b_16, a GPT-2-small-like decoder (fused
qkv + split + causal SDPA) and a 2-layer LSTM language model, built on the meta device (no
weights in memory). The baseline is what a user of FlopCounterMode writes: the model called on a
meta input inside ``FlopCounterMode(display=False)`` (inference), and the backward of the
output's sum inside a second one (training). tosim's side is ``load_torch`` (which runs the model
on meta tensors itself) and ``count_model`` for the phase; every run also checks that both give
the same FLOPs (less the masked half of causal attention, which FlopCounterMode prices dense).
Times are the best of ``--repeat`` runs, wall and CPU.
"""
import argparse
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import hardware_profiles  # noqa: E402
import opcount  # noqa: E402
from tests.test_opcount_torch_models import GPT, LSTMLM, ViT  # noqa: E402


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    """torchvision's resnet18 layout (11.7 M parameters)."""

    def __init__(self, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


MODELS = {
    "resnet18": (lambda: ResNet18(), lambda n: torch.empty(n, 3, 224, 224), 0),
    "vit_b_16": (lambda: ViT(image=224, patch=16, d=768, heads=12, layers=12, classes=1000),
                 lambda n: torch.empty(n, 3, 224, 224), 0),
    "gpt2_small": (lambda: GPT(vocab=50257, t=1024, d=768, heads=12, layers=12),
                   lambda n: torch.zeros(n, 1024, dtype=torch.long), 2 * 12 * 12 * (1024 * 1023 // 2) * 128),
    "lstm_lm": (lambda: LSTMLM(vocab=10000, d=650, h=650), lambda n: torch.zeros(n, 35, dtype=torch.long), 0),
}


def best_of(fn, repeat):
    """``(wall, cpu, value)``: the best wall and CPU seconds of ``repeat`` calls."""
    walls, cpus = [], []
    value = None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), value


def flop_counter(model, x, training):
    with FlopCounterMode(display=False) as forward:
        y = model(x)
    total = forward.get_total_flops()
    if training:
        with FlopCounterMode(display=False) as backward:
            y.sum().backward()
        total += backward.get_total_flops()
    return total


def tosim_count(model, x, batch, phase, profile):
    with warnings.catch_warnings():
        warnings.simplefilter("error", opcount.IncompleteModelWarning)
        ir = opcount.load_torch(model, x)
    return opcount.count_model(ir, profile, phase=phase, batch=batch).flops


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    profile = hardware_profiles.load("cmos-generic")
    print(f"torch {torch.__version__}; best of {args.repeat}; wall / CPU seconds; ratio = FlopCounterMode / tosim "
          "(> 1: tosim faster)")
    print(f"{'model':<11} {'phase':<9} {'batch':>5}  {'tosim wall':>10} {'cpu':>7}  {'FlopCounter wall':>16} "
          f"{'cpu':>7}  {'ratio wall':>10} {'cpu':>6}  GFLOPs")
    for name in args.models.split(","):
        make, inputs, causal_excess = MODELS[name]
        with torch.device("meta"):
            model = make()
        for phase in ("inference", "training"):
            for batch in (1, 32):
                with torch.device("meta"):
                    x = inputs(batch)
                t_wall, t_cpu, ours = best_of(lambda: tosim_count(model, x, batch, phase, profile), args.repeat)
                f_wall, f_cpu, theirs = best_of(lambda: flop_counter(model, x, phase == "training"), args.repeat)
                excess = causal_excess * batch * (3 if phase == "training" else 1)
                check = "" if ours == theirs - excess else f"  MISMATCH tosim {ours} vs {theirs - excess}"
                print(f"{name:<11} {phase:<9} {batch:>5}  {t_wall:>10.3f} {t_cpu:>7.3f}  {f_wall:>16.3f} "
                      f"{f_cpu:>7.3f}  {f_wall / t_wall:>10.2f} {f_cpu / t_cpu:>6.2f}  {ours / 1e9:.2f}{check}")


if __name__ == "__main__":
    main()
