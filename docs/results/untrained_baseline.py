"""Probe accuracy of an untrained (random-init) encoder: the floor each study must beat.

Used for the "untrained encoder" rows of docs/toy.md and README (Results, Performance)::

    OMP_NUM_THREADS=1 python docs/results/untrained_baseline.py
"""
import json
import time

import torch

import infomin.data as D
from infomin.evaluate import encode_fn, linear_probe
from infomin.evaluate.probes import extract_features
from infomin.models import ContrastiveModel
from infomin.views import build_views

torch.manual_seed(0)
out = {}
t0 = time.time()
# toy: the quickstart's budget (3072 train / the 1000 test images, torch probe), shared encoder
# on RGB, three seeds (the seed sets the images, the subset and the encoder's initialisation)
for seed in (0, 1, 2):
    tr = D.load("colorful-moving-digits", split="train", subset=3072, seed=seed)
    te = D.load("colorful-moving-digits", split="test", seed=seed)
    torch.manual_seed(seed)
    m = ContrastiveModel((3, 3), "convnet").eval()
    with torch.no_grad():
        enc = encode_fn(m, build_views({"kind": "shared_factors", "shared": ["digit"]})[1], device="cpu")
        ftr, fte = extract_features(enc, tr.images), extract_features(enc, te.images)
    for f in ("digit", "background", "position", "hue"):
        out[f"toy/{f}/seed{seed}"] = linear_probe(ftr, tr.factors[f], fte, te.factors[f], backend="torch",
                                                 seed=seed)
# CIFAR: 4096 / 2000, CMC model on the lab and rgb channel 1 | 2:3 splits
tr = D.load("cifar10-npz", split="train", subset=4096, seed=0)
te = D.load("cifar10-npz", split="test", subset=2000, seed=0)
for space in ("lab", "rgb"):
    spec, gen = build_views({"kind": "channel_split", "space": space, "split": [[0], [1, 2]]})
    torch.manual_seed(0)
    m = ContrastiveModel(tuple(gen.channels), "convnet").eval()
    with torch.no_grad():
        enc = encode_fn(m, gen, device="cpu")
        ftr, fte = extract_features(enc, tr.images), extract_features(enc, te.images)
    out[f"cifar/{space}"] = linear_probe(ftr, tr.labels, fte, te.labels, backend="sklearn", seed=0)
# CIFAR at the CPU recipe's scale (bench/time_to_accuracy.py): the recipe's encoder (convnet-512) on
# the RGB images, probed on 15,000 training / all 10,000 test images, three initialisations
tr = D.load("cifar10-npz", split="train", subset=15000, seed=0)
te = D.load("cifar10-npz", split="test", seed=0)
spec, gen = build_views("simclr")
for seed in (0, 1, 2):
    torch.manual_seed(seed)
    m = ContrastiveModel(tuple(gen.channels), "convnet-512").eval()
    with torch.no_grad():
        enc = encode_fn(m, gen, device="cpu")
        ftr, fte = extract_features(enc, tr.images), extract_features(enc, te.images)
    out[f"cifar15k/convnet-512/seed{seed}"] = linear_probe(ftr, tr.labels, fte, te.labels, backend="torch", seed=0)
out["seconds"] = time.time() - t0
print(json.dumps(out, indent=1))
json.dump(out, open("untrained_baseline.json", "w"), indent=1)
