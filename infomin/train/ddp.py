"""Multi-process data-parallel training: process groups, gathering with gradient, launching.

One process per GPU (NCCL) or per CPU worker (gloo). Launch with ``torchrun
--nproc-per-node N $(which infomin) train ...`` (the environment variables
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` are read
by :func:`from_env`) or let :func:`spawn` start N local processes (what
``infomin train --nproc N`` does).

The contrastive loss needs every negative of the *global* batch, so
embeddings are gathered across ranks with gradient
(:func:`gather_with_grad`): K stays the global K, as
in SimCLR's "we aggregate BN mean and variance over all devices" / global
negatives (arXiv 2002.05709, Sec. 2.2). Each rank then computes the same loss
over the global batch; DDP's gradient averaging divides the ``world_size``
copies back out, which gives exactly the single-process gradient.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``; ``local_rank`` picks its GPU."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


SINGLE = DistInfo()


def from_env() -> DistInfo | None:
    """The torchrun-style environment of this process, or ``None`` outside one (or world 1)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    world = int(os.environ["WORLD_SIZE"])
    if world <= 1:
        return None
    rank = int(os.environ["RANK"])
    return DistInfo(rank, world, int(os.environ.get("LOCAL_RANK", rank)))


def current() -> DistInfo:
    """The :class:`DistInfo` of an initialised process group, else the single-process one."""
    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        return DistInfo(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))
    return SINGLE


def device_for(info: DistInfo, device: str) -> str:
    """One GPU per process: ``cuda`` becomes ``cuda:<local_rank>``; CPU stays CPU."""
    if device == "cuda" and info.enabled:
        return f"cuda:{info.local_rank}"
    return device


def init(info: DistInfo, device: str) -> None:
    """Join the process group (NCCL on CUDA, gloo otherwise) if not joined yet."""
    if not info.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    # spawn() rendezvous through a file: no rank owns a TCP store that its exit would
    # pull from under the others while they tear down. torchrun's agent owns the
    # store itself, so env:// (the default) is safe there.
    rendezvous = os.environ.get(_RENDEZVOUS_ENV)
    init_method = f"file://{rendezvous}" if rendezvous else None
    dist.init_process_group(backend, init_method=init_method, rank=info.rank,
                            world_size=info.world_size)


def shutdown(*, wait: bool = False) -> None:
    """Leave the process group; with ``wait``, first wait until every rank is done.

    The barrier matters on gloo: a rank that destroys its group (and exits) while a
    peer still has collectives in flight can abort that peer's process at exit.
    """
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums the gradient over ranks and keeps this rank's slice.

    Written here (as solo-learn's ``GatherLayer`` and SimCLR's TF code do) because
    ``torch.distributed.nn.functional.all_gather`` is deprecated in favour of a private
    API, and gloo has no reduce_scatter: all_reduce + slice is the portable equivalent.
    """

    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:
        world = dist.get_world_size()
        parts = [torch.empty_like(z) for _ in range(world)]
        dist.all_gather(parts, z.contiguous())
        ctx.rank, ctx.n = dist.get_rank(), z.shape[0]
        return torch.cat(parts, dim=0)                     # (world * N, D)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)       # every rank's loss depends on our slice
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def gather_with_grad(z: Tensor) -> Tensor:
    """(N, D) per rank -> (world * N, D) in rank order; gradients flow back to each rank's slice.

    Every rank then computes the same loss over the global batch; the all-reduced
    gradient is ``world_size`` times the single-process one, and DDP's averaging over
    ranks divides that back out (tests/train/test_ddp.py checks the equality).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    return _GatherWithGrad.apply(z)


def shard(idx: Tensor, info: DistInfo) -> Tensor:
    """This rank's contiguous slice of a global batch of indices (the DistributedSampler split)."""
    if not info.enabled:
        return idx
    n = idx.shape[0] // info.world_size
    return idx[info.rank * n:(info.rank + 1) * n]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (e.g. RNG states for a checkpoint), in rank order."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_RENDEZVOUS_ENV = "INFOMIN_DIST_RENDEZVOUS_FILE"


def _entry(rank: int, fn: Callable[..., Any], world: int, port: int, rendezvous: str,
           args: tuple) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    os.environ[_RENDEZVOUS_ENV] = rendezvous
    try:
        fn(*args)
    except BaseException:
        shutdown()          # no barrier: the peers may never reach it
        raise
    shutdown(wait=True)


def spawn(fn: Callable[..., Any], nproc: int, args: tuple = ()) -> None:
    """Run ``fn(*args)`` in ``nproc`` fresh processes with a torchrun-like environment.

    ``fn`` must be importable (a module-level function). A failure in any process
    raises here (``torch.multiprocessing.ProcessRaisedException`` with its traceback).
    """
    import tempfile

    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="infomin-ddp-") as tmp:
        rendezvous = os.path.join(tmp, "rendezvous")
        mp.start_processes(_entry, args=(fn, nproc, free_port(), rendezvous, args),
                           nprocs=nproc, join=True, start_method="spawn")
