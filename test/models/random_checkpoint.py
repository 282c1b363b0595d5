#!/usr/bin/env python3
"""Write torchvision EfficientNet-B0 state_dicts for the converter tests (test/models/convert.test.ts).

    /usr/bin/python3 test/models/random_checkpoint.py OUT_DIR

OUT_DIR/random.pth: seeded random weights and non-trivial batch-norm statistics. A freshly initialised
network (running mean 0, variance 1, gamma 1, beta 0) maps every photo to almost the same vector, so a
parity test on it would prove little; with these, different photos give clearly different embeddings.
The other files are the same state_dict broken in one way each, for the converter's error messages.
"""
import collections
import os
import sys

import torch
import torchvision


class Shell:
    """Pickles as a call to os.system: a hostile checkpoint must be refused, never run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def random_state_dict(seed):
    """Random convolutions, random batch-norm scale and shift, and running statistics measured on seeded
    noise images (train-mode passes), so every layer passes on what tells one input from another."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = torchvision.models.efficientnet_b0(weights=None)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running statistics = the plain average over the passes below
            module.weight.data = torch.rand(module.num_features, generator=generator) + 0.5
            module.bias.data = torch.randn(module.num_features, generator=generator) * 0.1
    for name, param in model.named_parameters():
        if name.endswith(".bias") and ".fc" in name or name.startswith("classifier"):
            param.data = torch.randn(param.shape, generator=generator) * 0.1
    model.train()
    with torch.no_grad():
        for _ in range(4):
            coarse = torch.randn(8, 3, 14, 14, generator=generator)
            smooth = torch.nn.functional.interpolate(coarse, size=224, mode="bilinear", align_corners=False)
            model(smooth + 0.3 * torch.randn(8, 3, 224, 224, generator=generator))
    return model.state_dict()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    state = random_state_dict(seed=1)
    torch.save(state, os.path.join(out, "random.pth"))

    small = collections.OrderedDict(list(state.items())[:6])
    broken = collections.OrderedDict((k, v[:8] if k == "features.0.1.weight" else v) for k, v in state.items())
    del broken["features.3.1.block.1.0.weight"]
    broken["features.9.0.weight"] = torch.zeros(4)
    variants = {
        "broken.pth": broken,  # one key missing, one unexpected, one of the wrong shape
        "half.pth": collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in small.items()),
        "training.pth": {"epoch": 3, "model": small},
        "dataparallel.pth": collections.OrderedDict((f"module.{k}", v) for k, v in small.items()),
        "hostile.pth": {"features.0.0.weight": Shell(os.path.join(out, "pwned"))},
    }
    for name, value in variants.items():
        torch.save(value, os.path.join(out, name))
    torch.save(small, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)
    print(f"wrote {out}/random.pth and {len(variants) + 1} broken variants", file=sys.stderr)


if __name__ == "__main__":
    main()
