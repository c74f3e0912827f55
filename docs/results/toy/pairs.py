"""docs/results/toy/pairs.png: eight toy images, then a view pair of each for each shared factor.

    python docs/results/toy/pairs.py
"""
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from infomin.data.toy import colorful_moving_digits
from infomin.views.factors import FactorPairs

ds = colorful_moving_digits("test", n=64, seed=0)
idx = torch.arange(8)
rows, labels = [ds.batch(idx)], ["anchor"]
for seed, shared in enumerate((("digit",), ("background",), ("position",)), start=1):
    v1, v2, _ = FactorPairs(ds, shared=shared)(idx, seed)
    rows += [v1, v2]
    labels += [f"{shared[0]}: view 1", f"{shared[0]}: view 2"]
s, pad, left = 64, 4, 120
img = Image.new("RGB", (left + 8 * (s + pad), len(rows) * (s + pad)), "white")
draw = ImageDraw.Draw(img)
for r, (x, label) in enumerate(zip(rows, labels, strict=True)):
    draw.text((4, r * (s + pad) + s // 2 - 6), label, fill="black")
    for c in range(8):
        tile = x[c].mul(255).round().byte().permute(1, 2, 0).numpy()
        img.paste(Image.fromarray(tile).resize((s, s), Image.NEAREST), (left + c * (s + pad), r * (s + pad)))
img.save(Path(__file__).with_name("pairs.png"))
