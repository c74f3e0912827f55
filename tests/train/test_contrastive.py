"""The contrastive trainer: schedule, optimisers, exact resume, NaN handling, DDP equivalence."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from infomin.errors import InfominError, SpecError
from infomin.models import ContrastiveModel
from infomin.seeding import seeded
from infomin.train import ddp
from infomin.train.contrastive import (
    CHECKPOINT,
    LARS,
    ContrastiveTrainer,
    build_optimizer,
    warmup_cosine,
)

N, SIZE = 96, 8


def _images(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(N, 3, SIZE, SIZE, generator=g)


def _noisy_pairs(x: torch.Tensor):
    """A stochastic toy view generator: two noisy, randomly flipped copies."""

    def pair_fn(idx, rng):
        v = x[idx]
        flip = torch.rand(v.shape[0], generator=rng) < 0.5
        v1 = torch.where(flip[:, None, None, None], v.flip(-1), v)
        v2 = v + 0.1 * torch.randn(v.shape, generator=rng)
        return v1, v2, {"flip": flip}

    return pair_fn


def _trainer(pair_fn, epochs=2, model_seed=0, **kw):
    with seeded(model_seed):
        model = ContrastiveModel((3, 3), "convnet", proj_dim=16, encoder_kwargs={"width": 8})
    kw = {"temperature": 0.5, "epochs": epochs, "steps_per_epoch": N // 16, "lr": 0.05,
          "warmup_epochs": 0.5, "device": "cpu", "progress": False, **kw}
    return ContrastiveTrainer(model, pair_fn, **kw)


def test_warmup_cosine_closed_form():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    sched = warmup_cosine(opt, warmup_steps=4, total_steps=12)
    lrs = []
    for _ in range(12):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    # cosine over the remaining 8 steps: lr_t = 2 * 0.5 * (1 + cos(pi * t / 8))
    assert lrs[4:] == pytest.approx([1 + math.cos(math.pi * t / 8) for t in range(8)])


def test_warmup_longer_than_run_is_capped():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = warmup_cosine(opt, warmup_steps=10, total_steps=4)   # capped at 2 steps
    lrs = []
    for _ in range(4):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5, 1.0, 1.0, 0.5])


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW),
                                      ("adam", torch.optim.Adam), ("lars", LARS)])
def test_optimizers_reduce_a_quadratic(name, cls):
    w = nn.Parameter(torch.tensor([[3.0, -2.0]]))
    opt = build_optimizer([w], name, lr=0.1 if name != "lars" else 5.0, weight_decay=0.0)
    assert isinstance(opt, cls)
    start = float((w.detach() ** 2).sum())
    for _ in range(20):
        opt.zero_grad()
        (w ** 2).sum().backward()
        opt.step()
    assert float((w.detach() ** 2).sum()) < 0.5 * start


def test_lars_trust_ratio():
    # One LARS step with momentum 0 moves a 2-D weight by lr * eta * ||w|| (the local LR rule).
    w = nn.Parameter(torch.full((2, 2), 3.0))
    opt = LARS([w], lr=1.0, momentum=0.0, eta=0.01)
    w.grad = torch.full((2, 2), 100.0)
    before = w.detach().clone()
    opt.step()
    moved = (before - w.detach()).norm()
    assert float(moved) == pytest.approx(0.01 * float(before.norm()), rel=1e-5)


def test_bad_optimizer_names_choices():
    with pytest.raises(SpecError, match="lars"):
        build_optimizer([nn.Parameter(torch.zeros(1))], "adamax", lr=0.1)


def test_training_lowers_the_loss():
    tr = _trainer(_noisy_pairs(_images()), epochs=4, lr=0.1)
    hist = tr.fit(N, 16, rng=torch.Generator().manual_seed(0))
    assert len(hist["train/loss"]) == 4
    assert hist["train/loss"][-1] < hist["train/loss"][0] - 0.1
    k = 2 * 16 - 1
    assert hist["train/mi_nce"] == pytest.approx([math.log(k) - v for v in hist["train/loss"]])


def test_constant_schedule_and_a_step_budget_across_epochs():
    """The fresh critics' setting: Adam at a constant rate for exactly ``max_steps`` steps,
    even when that ends inside an epoch (6 steps per epoch here)."""
    calls = []
    inner = _noisy_pairs(_images())

    def counting(idx, rng):
        calls.append(len(idx))
        return inner(idx, rng)

    tr = _trainer(counting, epochs=3, optimizer="adam", lr=1e-3, schedule="constant", max_steps=8)
    hist = tr.fit(N, 16, rng=torch.Generator().manual_seed(0))
    assert len(calls) == 8 and tr.steps_done == 8 and tr.epoch == 2
    assert hist["train/lr"] == [1e-3, 1e-3]
    assert isinstance(tr.optimizer, torch.optim.Adam)
    with pytest.raises(SpecError, match="schedule"):
        _trainer(inner, schedule="linear")


def test_views_are_made_without_a_graph():
    """Views are data: a generator with learnable weights gets no gradient from training."""
    x = _images()
    w = nn.Parameter(torch.ones(()))

    def pair_fn(idx, rng):
        v = x[idx] * w
        assert not v.requires_grad
        return v, v + 0.1 * torch.randn(v.shape, generator=rng), {}

    _trainer(pair_fn, epochs=1).fit(N, 16, rng=torch.Generator().manual_seed(0))
    assert w.grad is None


class _Crash(Exception):
    pass


def test_exact_resume(tmp_path):
    x = _images()
    full = _trainer(_noisy_pairs(x), epochs=3)
    h_full = full.fit(N, 16, rng=torch.Generator().manual_seed(7), checkpoint_dir=tmp_path / "a")

    def crash(epoch, metrics):
        if epoch == 0:
            raise _Crash

    first = _trainer(_noisy_pairs(x), epochs=3)
    with pytest.raises(_Crash):
        first.fit(N, 16, rng=torch.Generator().manual_seed(7), checkpoint_dir=tmp_path / "b",
                  on_epoch=crash)
    resumed = _trainer(_noisy_pairs(x), epochs=3, model_seed=123)   # different init: all restored
    resumed.load_checkpoint(tmp_path / "b" / CHECKPOINT)
    assert resumed.epoch == 1
    h_res = resumed.fit(N, 16, checkpoint_dir=tmp_path / "b")
    assert h_res["train/loss"] == h_full["train/loss"]       # bit-identical, every epoch
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_checkpoint_is_plain_tensors(tmp_path):
    tr = _trainer(_noisy_pairs(_images()), epochs=1)
    tr.fit(N, 16, rng=torch.Generator().manual_seed(0), checkpoint_dir=tmp_path)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)   # no pickle of objects
    assert state["epoch"] == 1 and "optimizer" in state and "order_rng" in state


def test_resume_missing_checkpoint_is_clear(tmp_path):
    tr = _trainer(_noisy_pairs(_images()), epochs=1)
    with pytest.raises(SpecError, match="no checkpoint"):
        tr.load_checkpoint(tmp_path / CHECKPOINT)


def test_nan_loss_is_a_clear_error():
    x = _images()

    def bad_pairs(idx, rng):
        v = x[idx].clone()
        v[0, 0, 0, 0] = float("nan")
        return v, v, {}

    tr = _trainer(bad_pairs, epochs=1)
    with pytest.raises(InfominError, match="loss is nan.*learning rate"):
        tr.fit(N, 16, rng=torch.Generator().manual_seed(0))


def test_amp_on_cpu_is_refused():
    with pytest.raises(SpecError, match="amp"):
        _trainer(_noisy_pairs(_images()), amp=True)


def test_channels_last_trains_the_same_model():
    x = _images()
    a = _trainer(_noisy_pairs(x), epochs=1).fit(N, 16, rng=torch.Generator().manual_seed(1))
    b = _trainer(_noisy_pairs(x), epochs=1, channels_last=True).fit(
        N, 16, rng=torch.Generator().manual_seed(1))
    assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-4)


def test_shard_is_a_partition():
    idx = torch.arange(12)
    parts = [ddp.shard(idx, ddp.DistInfo(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat(parts), idx)
