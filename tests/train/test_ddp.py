"""DDP on the CPU (gloo, 2 processes): it completes, the ranks agree, and with embeddings gathered
across ranks a step equals the single-process step on the global batch (K stays global)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from infomin.train import ddp
from infomin.train.contrastive import ContrastiveTrainer

N, BATCH, STEPS = 64, 16, 4


class _TwoTower(nn.Module):
    """No BatchNorm, so per-rank statistics cannot differ from the global batch's."""

    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 8))

    def forward(self, v1, v2):
        return F.normalize(self.f(v1), dim=1), F.normalize(self.f(v2), dim=1)


def _images() -> torch.Tensor:
    return torch.rand(N, 3, 4, 4, generator=torch.Generator().manual_seed(0))


def _pairs(idx, rng):  # deterministic views: the same on any rank split
    x = _images()[idx]
    return x, x.flip(-1) * 0.9, {}


def _train(info: ddp.DistInfo, form: str) -> nn.Module:
    torch.manual_seed(0)
    model = _TwoTower()
    tr = ContrastiveTrainer(model, _pairs, temperature=0.3, form=form, epochs=1,
                            steps_per_epoch=STEPS, lr=0.5, momentum=0.9, device="cpu",
                            dist=info, progress=False)
    tr.fit(N, BATCH, rng=torch.Generator().manual_seed(3))
    return model


def _worker(out_dir: str, form: str) -> None:
    info = ddp.from_env()
    torch.set_num_threads(1)
    ddp.init(info, "cpu")
    model = _train(info, form)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              f"{out_dir}/rank{info.rank}.safetensors")


def test_from_env_outside_a_launch(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert ddp.from_env() is None
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = ddp.from_env()
    assert (info.rank, info.world_size, info.is_main) == (1, 4, False)
    assert ddp.device_for(info, "cuda") == "cuda:1" and ddp.device_for(info, "cpu") == "cpu"


def test_two_process_gloo_equals_one_process_on_the_global_batch(tmp_path):
    ddp.spawn(_worker, 2, (str(tmp_path), "ntxent"))
    r0 = load_file(tmp_path / "rank0.safetensors")
    r1 = load_file(tmp_path / "rank1.safetensors")
    single = _train(ddp.SINGLE, "ntxent").state_dict()
    torch.manual_seed(0)
    start = _TwoTower().state_dict()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"ranks disagree on {k}"
        assert torch.allclose(r0[k], single[k], atol=1e-5), f"DDP differs from 1 process on {k}"
        assert not torch.allclose(r0[k], start[k]), f"{k} did not train"
