#!/usr/bin/env python3
"""Export the production embedding model: torchvision EfficientNet-B0 (ImageNet IMAGENET1K_V1) with the
classifier replaced by identity, so the output is the 1280-d pooled feature. Writes NAME.onnx and the
sidecar NAME.json that the service reads (input/output names, width, preprocessing).

    python3 models/export.py                      # pretrained weights (downloads them once via torchvision)
    python3 models/export.py --random-weights     # no internet: same architecture, seeded random weights
    python3 models/export.py --checkpoint FILE    # a torchvision EfficientNet-B0 state_dict saved with torch.save
    python3 models/export.py --out /tmp/m/efficientnet_b0.onnx --check /tmp/m/check.json
"""
import argparse
import hashlib
import json
import os
import sys

import torch
import torchvision

RESIZE, CROP = 256, 224
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
WEIGHTS = torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1
# torch.hub's rule: the hex after the last '-' of the file name starts the file's SHA-256.
WEIGHTS_SHA256_PREFIX = WEIGHTS.url.rsplit("-", 1)[1].split(".")[0]


def model_name(weights: str) -> str:
    if weights == WEIGHTS.name:
        return "efficientnet_b0"
    return "efficientnet_b0_random" if weights.startswith("random") else "efficientnet_b0_custom"


def build_model(random_weights: bool, checkpoint: str | None) -> tuple[torch.nn.Module, dict]:
    """The model, classifier replaced by identity, and where its weights came from (for the sidecar)."""
    if random_weights:
        torch.manual_seed(0)
        model = torchvision.models.efficientnet_b0(weights=None)
        provenance = {"weights": "random(seed=0)", "source": None, "checkpoint_sha256": None}
    elif checkpoint:
        model = torchvision.models.efficientnet_b0(weights=None)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu"))  # strict: every key, every shape
        digest = sha256(checkpoint)
        name = WEIGHTS.name if digest.startswith(WEIGHTS_SHA256_PREFIX) else "custom"
        provenance = {"weights": name, "source": os.path.basename(checkpoint), "checkpoint_sha256": digest}
    else:
        model = torchvision.models.efficientnet_b0(weights=WEIGHTS)
        cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(WEIGHTS.url))
        provenance = {"weights": WEIGHTS.name, "source": WEIGHTS.url, "checkpoint_sha256": sha256(cached)}
    model.classifier = torch.nn.Identity()
    return model.eval(), provenance


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(here, "efficientnet_b0.onnx"), help="path of the .onnx to write")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--random-weights", action="store_true", help="seeded random weights (no download)")
    source.add_argument("--checkpoint", help="convert this EfficientNet-B0 state_dict instead of downloading one")
    parser.add_argument("--check", help="also write a fixed input and torch's output for it (JSON) to verify the export")
    args = parser.parse_args()

    model, provenance = build_model(args.random_weights, args.checkpoint)
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    dummy = torch.zeros(1, 3, CROP, CROP)
    with torch.no_grad():
        torch.onnx.export(
            model,
            dummy,
            tmp,
            input_names=["input"],
            output_names=["embedding"],
            dynamic_axes={"input": {0: "N"}, "embedding": {0: "N"}},
            opset_version=13,
        )
        dim = int(model(dummy).shape[1])
    os.replace(tmp, out)  # never leave a half-written model where the service looks for one

    sidecar = {
        # Named by its weights, as `npm run model` names them (modelNameFor in convert.ts): collections are
        # named after the model, so random or custom weights never reuse the ImageNet model's collection.
        "name": model_name(provenance["weights"]),
        "dim": dim,
        "input": "input",
        "output": "embedding",
        "resize": RESIZE,
        "crop": CROP,
        "mean": MEAN,
        "std": STD,
        **provenance,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "sha256": sha256(out),
    }
    sidecar_path = os.path.splitext(out)[0] + ".json"
    with open(sidecar_path + ".tmp", "w") as handle:
        json.dump(sidecar, handle, indent=2)
        handle.write("\n")
    os.replace(sidecar_path + ".tmp", sidecar_path)

    if args.check:
        generator = torch.Generator().manual_seed(1)
        sample = torch.randn(2, 3, CROP, CROP, generator=generator)
        with torch.no_grad():
            expected = model(sample)
        with open(args.check, "w") as handle:
            json.dump({"shape": list(sample.shape), "input": sample.flatten().tolist(), "output": expected.tolist()}, handle)

    print(f"wrote {out} ({dim}-d, {sidecar['weights']}) and {sidecar_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
