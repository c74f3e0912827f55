"""infomin.views: differentiable view generators, their specs, presets and registry.

>>> import torch, infomin.views as V
>>> gen = V.build("lab_l_ab")            # a preset in views/, or a dict, or a YAML path
>>> v1, v2, params = gen(torch.rand(8, 3, 32, 32), generator=0)
>>> v1.shape[1], v2.shape[1]
(1, 2)

Families: colour spaces and channel splits (:mod:`.color`), crop pairs
(:mod:`.crop`), kornia augmentation presets (:mod:`.augment`), composition
(:mod:`.compose`) and learnable generators (:mod:`.learned`).
``infomin.views.load`` returns a saved or registered generator (:mod:`.io`).
"""

from infomin.views import augment, color, compose, crop, learned  # noqa: F401  (registers kinds)
from infomin.views.base import Params, ViewGenerator, ViewPair
from infomin.views.registry import available, build, get, kinds, register
from infomin.views.spec import dump_spec, flatten, load_spec, merge, presets, unflatten

__all__ = [
    "Params", "ViewGenerator", "ViewPair", "available", "build", "get", "kinds", "register",
    "dump_spec", "flatten", "load_spec", "merge", "presets", "unflatten", "load", "save",
]


def __getattr__(name):  # lazy: io pulls in safetensors and (for URIs) mlflow
    if name in ("load", "save"):
        from infomin.views import io

        return getattr(io, name)
    raise AttributeError(name)
