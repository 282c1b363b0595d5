#!/usr/bin/env python3
"""The seed-like PyTorch pipeline, timed per image (a developer tool; run with Debian's /usr/bin/python3).

    /usr/bin/python3 scripts/dev/bench-torch-pipeline.py DIR [--runs N]

Each JPEG in DIR goes through PIL decode + torchvision transforms (Resize 256, CenterCrop 224, ToTensor,
Normalize) + EfficientNet-B0 (random weights, classifier = identity), one thread, batch 1, as the original
Python service did. Prints the median and p90 in ms over all images and runs, to compare with
`npm run bench:http -- --route /embed` on the same photos.
"""
import argparse
import io
import pathlib
import statistics
import time

import torch
import torchvision
from PIL import Image
from torchvision import transforms

parser = argparse.ArgumentParser()
parser.add_argument("dir")
parser.add_argument("--runs", type=int, default=3)
args = parser.parse_args()

torch.set_num_threads(1)
model = torchvision.models.efficientnet_b0(weights=None)
model.classifier = torch.nn.Identity()
model.eval()
prep = transforms.Compose([
    transforms.Resize(256),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])
files = sorted(pathlib.Path(args.dir).glob("*.jpg"))
if not files:
    raise SystemExit(f"no .jpg in {args.dir}")
blobs = [f.read_bytes() for f in files]
times = []
with torch.no_grad():
    for _ in range(args.runs):
        for blob in blobs:
            started = time.perf_counter()
            image = Image.open(io.BytesIO(blob)).convert("RGB")
            vector = model(prep(image).unsqueeze(0))[0]
            vector = vector / vector.norm()
            times.append((time.perf_counter() - started) * 1000)
times.sort()
print(f"torch pipeline: {len(times)} embeddings of {len(files)} photos, "
      f"median {statistics.median(times):.1f} ms, p90 {times[int(len(times) * 0.9)]:.1f} ms")
