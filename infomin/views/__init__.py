"""infomin.views: differentiable view generators, their specs, presets and registry.

>>> import torch, infomin.views as V
>>> gen = V.build("lab_l_ab")            # a preset in views/, or a dict, or a YAML path
>>> v1, v2, params = gen(torch.rand(8, 3, 32, 32), rng=0)
>>> v1.shape[1], v2.shape[1]
(1, 2)

Families: colour spaces and channel splits (:mod:`.color`), crop pairs
(:mod:`.crop`), kornia augmentation presets (:mod:`.augment`), composition
(:mod:`.compose`), learnable generators (:mod:`.learned`) and the toy's
factor-controlled pairs (:mod:`.factors`). :func:`load` returns a saved or
registered generator (:mod:`.sources`, :mod:`.io`, :mod:`.hub`).
"""

from infomin.views import augment, color, compose, crop, factors, learned  # noqa: F401  (registers kinds)
from infomin.views.base import ImagePairs, PairSource, Params, ViewGenerator, ViewPair
from infomin.views.io import save
from infomin.views.registry import available, build, get, kinds, register
from infomin.views.sources import ViewSource, build_views, load, resolve_source
from infomin.views.spec import dump_spec, flatten, load_spec, merge, presets, unflatten

__all__ = [
    "ImagePairs", "PairSource", "Params", "ViewGenerator", "ViewPair", "ViewSource", "available",
    "build", "build_views", "get", "kinds", "register", "resolve_source", "dump_spec", "flatten",
    "load_spec", "merge", "presets", "unflatten", "load", "save",
]
