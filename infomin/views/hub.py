"""Learned view generators in MLflow: log them to a run, register them, download them again.

A saved generator (:mod:`infomin.views.io`: YAML spec + safetensors weights) is
logged as plain run artifacts (``runs:/<run_id>/view_generator``) and as an MLflow
"models from code" pyfunc whose code is the small file below (stored as text,
never pickled) and whose artifacts are the same two files; registering it makes a
model version, and an alias (``models:/<name>@current``) points at it (MLflow's
stages are deprecated). :func:`download_view_generator` copies the files back
without loading anything; :func:`infomin.views.load` then reads them.

Every function here imports :mod:`infomin.tracking` (and so mlflow, about two
seconds) only when called: the view library itself never needs MLflow.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infomin.errors import SpecError
from infomin.views.io import read_meta

os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

VIEW_GENERATOR_ARTIFACT = "view_generator"
VIEW_GENERATOR_MODEL = "view_generator_model"
URI_SCHEMES = ("runs:/", "models:/")

# The pyfunc's code (MLflow "models from code": the file is stored as is and run by
# mlflow.pyfunc.load_model; nothing is pickled). predict() takes images (B, C, H, W) in [0, 1]
# and returns the two views concatenated on the channel axis (B, c1 + c2, H, W).
_PYFUNC_CODE = '''"""infomin learned view generator as an MLflow pyfunc (models from code; no pickle)."""
import warnings

import numpy as np
import torch
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

with warnings.catch_warnings():  # MLflow asks for type hints on predict; images are plain arrays
    warnings.simplefilter("ignore", UserWarning)

    class ViewGeneratorModel(PythonModel):
        def load_context(self, context):
            from infomin.views import load

            self.generator = load(context.artifacts["spec"], frozen=True)

        def predict(self, context, model_input, params=None):
            x = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
            seed = int((params or {}).get("seed", 0))
            with torch.no_grad():
                v1, v2, _ = self.generator(x, seed)
            return torch.cat([v1, v2], dim=1).numpy()


set_model(ViewGeneratorModel())
'''


def is_uri(source: Any) -> bool:
    """Whether ``source`` is an MLflow URI this module resolves (``runs:/``, ``models:/``)."""
    return isinstance(source, str) and source.startswith(URI_SCHEMES)


@contextlib.contextmanager
def _global_uri(uri: str | None) -> Iterator[None]:
    """Briefly point MLflow's *global* tracking URI at ``uri`` (the fluent model API and the
    registry's resolution of ``models:/`` URIs read it, not a client's URI).

    ``mlflow.set_tracking_uri`` also writes (or, given ``None``, deletes) the
    ``MLFLOW_TRACKING_URI`` environment variable, so both the module's URI and the
    variable are restored exactly afterwards.
    """
    import mlflow  # heavy (about 2 s); only MLflow URIs need it
    from mlflow.tracking._tracking_service import utils as _service  # the explicitly set URI

    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    old_uri = _service._tracking_uri
    old_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking.tracking_uri(uri))
    try:
        yield
    finally:
        mlflow.set_tracking_uri(old_uri)
        if old_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_env


@contextlib.contextmanager
def _active(run_id: str, uri: str | None) -> Iterator[None]:
    """Briefly make ``run_id`` MLflow's active run on ``uri`` (for ``mlflow.pyfunc.log_model``)."""
    import mlflow  # heavy; see _global_uri

    with _global_uri(uri), mlflow.start_run(run_id=run_id):
        yield


def log_view_generator(yaml_path: str | Path, *, run_id: str, register_as: str | None = None,
                       alias: str = "current", uri: str | None = None) -> dict[str, Any]:
    """Log a saved view generator to ``run_id`` and optionally register it under ``register_as@alias``.

    The YAML and ``.safetensors`` pair go to the run's ``view_generator/`` artifacts
    (``runs:/<run_id>/view_generator``); a models-from-code pyfunc holding the
    same two files is logged as ``view_generator_model``. With ``register_as`` the
    pyfunc becomes a new version of that registered model and ``alias`` points to it
    (MLflow reserves ``latest``: ``models:/<name>/latest`` already means the newest version).

    Returns ``{"run_uri", "model_uri", "name", "version", "alias", "registered_uri"}``.
    The run must not be in progress elsewhere in this process's fluent stack.
    """
    import mlflow  # heavy; see _global_uri

    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    yaml_path = Path(yaml_path)
    weights = yaml_path.parent / read_meta(yaml_path)["weights"]
    run = tracking.Run(run_id, uri)
    run.log_artifact(yaml_path, VIEW_GENERATOR_ARTIFACT)
    run.log_artifact(weights, VIEW_GENERATOR_ARTIFACT)
    out: dict[str, Any] = {"run_uri": f"runs:/{run_id}/{VIEW_GENERATOR_ARTIFACT}", "name": None,
                           "version": None, "alias": None, "registered_uri": None}
    with tempfile.TemporaryDirectory(prefix="infomin-pyfunc-") as tmp:
        code = Path(tmp) / "view_generator_model.py"
        code.write_text(_PYFUNC_CODE)
        with _active(run_id, uri):
            info = mlflow.pyfunc.log_model(
                name=VIEW_GENERATOR_MODEL,
                python_model=str(code),
                artifacts={"spec": str(yaml_path), "weights": str(weights)},
                # explicit requirements: skips MLflow's inference, which loads the model in a subprocess
                pip_requirements=["torch", "numpy", "safetensors", "pyyaml", "infomin"],
            )
            out["model_uri"] = info.model_uri
            if register_as:
                c = tracking.client(uri)
                with contextlib.suppress(mlflow.exceptions.MlflowException):  # exists already
                    c.create_registered_model(register_as)
                mv = c.create_model_version(register_as, source=info.model_uri, run_id=run_id,
                                            model_id=getattr(info, "model_id", None))
                c.set_registered_model_alias(register_as, alias, mv.version)
                out.update(name=register_as, version=int(mv.version), alias=alias,
                           registered_uri=f"models:/{register_as}@{alias}")
    return out


def download_view_generator(source: str, dst: str | Path | None = None, *,
                            uri: str | None = None) -> Path:
    """Download a generator named by ``runs:/<run_id>/<path>`` or ``models:/<name>@<alias>``
    (or ``models:/<name>/<version>``) and return the local YAML path.

    Only plain files are copied (YAML, safetensors, MLmodel, the pyfunc's code); nothing
    is loaded or unpickled here: :func:`infomin.views.load` reads the two files.
    """
    import mlflow  # heavy; see _global_uri

    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    dst = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="infomin-gen-"))
    dst.mkdir(parents=True, exist_ok=True)
    u = tracking.tracking_uri(uri)
    try:
        if source.startswith("runs:/"):
            rest = source[len("runs:/"):].strip("/")
            run_id, _, path = rest.partition("/")
            if not run_id:
                raise SpecError("source", source, "expected runs:/<run_id>/<artifact path>")
            path = path or VIEW_GENERATOR_ARTIFACT
            if path.endswith((".yaml", ".yml", ".safetensors")):  # a file: fetch its folder
                path = path.rsplit("/", 1)[0] if "/" in path else ""
            local = Path(tracking.client(u).download_artifacts(run_id, path, str(dst)))
        elif source.startswith("models:/"):
            with _global_uri(u):
                local = Path(mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=str(dst), tracking_uri=u))
            # a pyfunc keeps its artifacts under artifacts/ (models from code)
            if (local / "artifacts").is_dir():
                local = local / "artifacts"
        else:
            raise SpecError("source", source, "expected a runs:/ or models:/ URI")
    except mlflow.exceptions.MlflowException as e:
        raise SpecError("source", source, f"MLflow could not resolve it ({str(e).splitlines()[0]})") from None
    if local.is_file():
        return local
    found = sorted(local.rglob("*.yaml"))
    if len(found) != 1:
        raise SpecError("source", source, f"expected one saved generator (.yaml), found "
                                          f"{[str(f.relative_to(local)) for f in found]}")
    return found[0]


__all__ = ["URI_SCHEMES", "VIEW_GENERATOR_ARTIFACT", "VIEW_GENERATOR_MODEL", "download_view_generator",
           "is_uri", "log_view_generator"]
