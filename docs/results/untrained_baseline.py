"""Probe accuracy of an untrained (random-init) encoder: the floor each study must beat.

Used for the "untrained encoder" rows of docs/toy.md and README (Results, Performance)::

    OMP_NUM_THREADS=1 python docs/results/untrained_baseline.py            # every floor
    OMP_NUM_THREADS=1 python docs/results/untrained_baseline.py cmc15k     # only some of them

Floors: ``toy`` (the quickstart's budget), ``cifar`` (the CMC model of the older
CIFAR_CPU_SMALL reproductions), ``cifar15k`` (the CPU recipe's encoder on RGB images) and
``cmc15k`` (the CPU recipe's encoder, one per view, on the Lab and RGB channel 1 | 2:3 splits:
the floor of ``studies/repro_cifar_color_crops.py``). Results are printed and written to
``untrained_baseline.json`` (merged with what an earlier run wrote there).
"""
import json
import sys
import time
from pathlib import Path

import torch

import infomin.data as D
from infomin.evaluate import encode_fn, linear_probe
from infomin.evaluate.probes import extract_features
from infomin.models import ContrastiveModel
from infomin.views import build_views


def probe(model, gen, tr, te, labels_tr, labels_te, backend, seed=0):
    with torch.no_grad():
        enc = encode_fn(model.eval(), gen, device="cpu")
        ftr, fte = extract_features(enc, tr.images), extract_features(enc, te.images)
    return linear_probe(ftr, labels_tr, fte, labels_te, backend=backend, seed=seed)


def toy(out):
    # the quickstart's budget (3072 train / the 1000 test images, torch probe), shared encoder on
    # RGB, three seeds (the seed sets the images, the subset and the encoder's initialisation)
    for seed in (0, 1, 2):
        tr = D.load("colorful-moving-digits", split="train", subset=3072, seed=seed)
        te = D.load("colorful-moving-digits", split="test", seed=seed)
        torch.manual_seed(seed)
        m = ContrastiveModel((3, 3), "convnet")
        gen = build_views({"kind": "shared_factors", "shared": ["digit"]})[1]
        with torch.no_grad():
            enc = encode_fn(m.eval(), gen, device="cpu")
            ftr, fte = extract_features(enc, tr.images), extract_features(enc, te.images)
        for f in ("digit", "background", "position", "hue"):
            out[f"toy/{f}/seed{seed}"] = linear_probe(ftr, tr.factors[f], fte, te.factors[f], backend="torch",
                                                     seed=seed)


def cifar(out):
    # 4096 / 2000, CMC model on the lab and rgb channel 1 | 2:3 splits (CIFAR_CPU_SMALL)
    tr = D.load("cifar10-npz", split="train", subset=4096, seed=0)
    te = D.load("cifar10-npz", split="test", subset=2000, seed=0)
    for space in ("lab", "rgb"):
        spec, gen = build_views({"kind": "channel_split", "space": space, "split": [[0], [1, 2]]})
        torch.manual_seed(0)
        m = ContrastiveModel(tuple(gen.channels), "convnet")
        out[f"cifar/{space}"] = probe(m, gen, tr, te, tr.labels, te.labels, "sklearn")


def cifar15k(out):
    # the CPU recipe's encoder (convnet-512) on the RGB images, probed on 15,000 training / all
    # 10,000 test images, three initialisations (bench/time_to_accuracy.py)
    tr = D.load("cifar10-npz", split="train", subset=15000, seed=0)
    te = D.load("cifar10-npz", split="test", seed=0)
    spec, gen = build_views("simclr")
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        m = ContrastiveModel(tuple(gen.channels), "convnet-512")
        out[f"cifar15k/convnet-512/seed{seed}"] = probe(m, gen, tr, te, tr.labels, te.labels, "torch")


def cmc15k(out):
    # one convnet-512 per view on the channel 1 | 2:3 split, features of both concatenated (the
    # probe of repro_cifar_color_crops), 15,000 / 10,000 images, three initialisations
    tr = D.load("cifar10-npz", split="train", subset=15000, seed=0)
    te = D.load("cifar10-npz", split="test", seed=0)
    for space in ("lab", "rgb"):
        spec, gen = build_views({"kind": "channel_split", "space": space, "split": [[0], [1, 2]]})
        for seed in (0, 1, 2):
            torch.manual_seed(seed)
            m = ContrastiveModel(tuple(gen.channels), "convnet-512")
            out[f"cmc15k/{space}/seed{seed}"] = probe(m, gen, tr, te, tr.labels, te.labels, "torch")


FLOORS = {"toy": toy, "cifar": cifar, "cifar15k": cifar15k, "cmc15k": cmc15k}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(FLOORS)
    unknown = sorted(set(chosen) - set(FLOORS))
    if unknown:
        sys.exit(f"unknown floor(s) {unknown}: choose from {sorted(FLOORS)}")
    path = Path("untrained_baseline.json")
    out = json.loads(path.read_text()) if path.exists() else {}
    t0 = time.time()
    for name in chosen:
        FLOORS[name](out)
    out["seconds"] = time.time() - t0
    print(json.dumps(out, indent=1))
    path.write_text(json.dumps(out, indent=1))
