import torch
import torch.nn.functional as F
from torch import nn

import infomin.views as V
from infomin.data import load

g = V.load("learned/flow_toy")  # or a YAML path, runs:/..., models:/name@alias; frozen, never unpickled
images = load("colorful-moving-digits", subset=512).images  # uint8 (N, 3, 32, 32)

def encoder(c):  # any torch module works; one per view because the views differ in channels (1 | 2)
    return nn.Sequential(nn.Conv2d(c, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 64))

torch.manual_seed(0)
f1, f2 = encoder(g.channels[0]), encoder(g.channels[1])
opt = torch.optim.Adam([*f1.parameters(), *f2.parameters()], lr=2e-3)
rng = torch.Generator().manual_seed(0)
for _ in range(60):
    x = images[torch.randint(len(images), (64,), generator=rng)].float() / 255  # (N, 3, H, W)
    with torch.no_grad():
        v1, v2, _ = g(x, rng)  # learned views: (N, 1, H, W), (N, 2, H, W)
    z1, z2 = F.normalize(f1(v1), dim=1), F.normalize(f2(v2), dim=1)
    logits = z1 @ z2.T / 0.1  # (N, N): positives on the diagonal (CMC InfoNCE)
    target = torch.arange(len(x))
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"InfoNCE loss after 60 steps: {loss.item():.3f} (log N = {torch.log(torch.tensor(64.)):.3f})")
