#!/usr/bin/env python3
"""Write the torchvision reference for the preprocessing parity test (test/images/parity.test.ts).

For each fixture image it saves what torchvision feeds the model before ToTensor/Normalize:
Resize(256) (PIL bilinear, antialiased) then CenterCrop(224), as a lossless 224x224 PNG. The images
themselves are synthetic and deterministic (smooth texture, sharp edges, sensor-like noise), generated
here when missing, so nothing third-party is committed.

    /usr/bin/python3 models/parity_reference.py test/fixtures/parity
"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw
from torchvision import transforms

# name, size, format: odd sizes exercise the truncating resize and the half-to-even crop rounding.
FIXTURES = [
    ("landscape-1024x768", (1024, 768), "JPEG"),
    ("portrait-683x1024", (683, 1024), "JPEG"),
    ("wide-1280x720", (1280, 720), "JPEG"),
    ("odd-1001x667", (1001, 667), "JPEG"),
    ("small-200x150", (200, 150), "PNG"),
    ("lossless-640x427", (640, 427), "PNG"),
]


def synthesize(size, seed):
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for channel in range(3):
        for _ in range(6):
            fx, fy = rng.uniform(0.002, 0.05, 2)
            phase = rng.uniform(0, 2 * np.pi)
            image[..., channel] += rng.uniform(10, 40) * np.sin(fx * x * 2 * np.pi + fy * y * 2 * np.pi + phase)
    image += 128
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for _ in range(12):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        x1, y1 = x0 + rng.integers(5, width // 3), y0 + rng.integers(5, height // 3)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    noisy = np.asarray(picture, np.float32) + rng.normal(0, 3, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/parity"
    os.makedirs(out, exist_ok=True)
    reference = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
    for seed, (name, size, fmt) in enumerate(FIXTURES):
        source = os.path.join(out, f"{name}.{'jpg' if fmt == 'JPEG' else 'png'}")
        if not os.path.exists(source):
            image = synthesize(size, seed)
            image.save(source, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        with Image.open(source) as image:
            crop = reference(image.convert("RGB"))
        crop.save(os.path.join(out, f"{name}.ref.png"), "PNG")
        print(f"{source} -> {name}.ref.png")


if __name__ == "__main__":
    main()
