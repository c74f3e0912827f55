"""Saving and loading learned generators: safetensors + YAML, MLflow URIs, and refusal of
tampered, mis-shaped and pickle-based files (nothing is ever unpickled)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
import yaml

from infomin.errors import InfominError, SpecError
from infomin.views import build, hub, load, save
from infomin.views.io import FORMAT, UnsafeFileError, read_meta, sha256_file


def _trained_flow(seed: int = 0, **kw):
    g = build({"kind": "flow_color", "layers": 2, **kw})
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=rng))
    return g


def _x():
    return torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize("spec", [{"kind": "flow_color", "layers": 2},
                                  {"kind": "flow_color", "start": "ydbdr", "volume_preserving": True},
                                  {"kind": "perturbation", "hidden": 8}])
def test_save_then_load_gives_identical_views(spec):
    g = build(spec)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(0.1)
    path = save(g, "out/gen.yaml", provenance={"dataset": "toy", "seed": 3, "run_id": "abc"})
    assert path == Path("out/gen.yaml") and Path("out/gen.safetensors").is_file()
    h = load(path)
    a, b = g(_x(), generator=11), h(_x(), generator=11)
    assert torch.equal(a.v1, b.v1) and torch.equal(a.v2, b.v2)
    assert type(h) is type(g) and h.to_spec() == g.to_spec()
    meta = read_meta(path)
    assert meta["format"] == FORMAT and meta["sha256"] == sha256_file("out/gen.safetensors")
    assert meta["provenance"]["dataset"] == "toy" and meta["provenance"]["seed"] == 3
    assert "date" in meta["provenance"]
    # the YAML is also a plain spec: build() reads it (meta ignored)
    assert build(str(path)).to_spec() == g.to_spec()


def test_loaded_generator_is_frozen_by_default():
    path = save(_trained_flow(), "g.yaml")
    h = load(path)
    assert not h.training and all(not p.requires_grad for p in h.parameters())
    t = load(path, frozen=False)
    assert t.training and all(p.requires_grad for p in t.parameters())


def test_load_accepts_weights_path_folder_and_preset(tmp_path, monkeypatch):
    g = _trained_flow()
    save(g, tmp_path / "views" / "learned" / "flow_toy.yaml")
    monkeypatch.setenv("INFOMIN_VIEWS_DIR", str(tmp_path / "views"))
    x = _x()
    for source in ("flow_toy", "learned/flow_toy", tmp_path / "views" / "learned" / "flow_toy.safetensors",
                   tmp_path / "views" / "learned"):
        assert torch.equal(load(source)(x).v1, g(x).v1), source
    with pytest.raises(SpecError, match="no such file, URI or learned preset.*learned/flow_toy"):
        load("flow_tyo")


def test_tampered_weights_are_refused():
    path = save(_trained_flow(), "g.yaml")
    w = Path("g.safetensors")
    data = bytearray(w.read_bytes())
    data[-3] ^= 0x01  # one bit of one weight
    w.write_bytes(bytes(data))
    with pytest.raises(InfominError, match="SHA-256 mismatch"):
        load(path)


def test_wrong_shapes_are_refused_with_the_tensor_names():
    path = save(_trained_flow(), "g.yaml")
    doc = yaml.safe_load(path.read_text())
    doc["hidden"] = 8  # the weights were saved with hidden=16
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"wrong shapes .*blocks\.1\.net\.0\.weight: file \[16, 1, 1, 1\] vs spec \[8, 1, 1, 1\]"):
        load(path)
    doc["hidden"], doc["layers"] = 16, 1
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"unexpected tensors \['blocks\.2"):
        load(path)


class _Payload:
    """Unpickling this writes a marker file: proof that nothing was unpickled when it stays absent."""

    def __reduce__(self):
        return (open, ("PWNED", "w"))


def test_pickle_files_are_refused_and_never_executed():
    Path("evil.pkl").write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(UnsafeFileError, match=r"refusing to load a \.pkl file"):
        load("evil.pkl")
    # the same bytes under an innocent name
    Path("evil.yaml").write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(UnsafeFileError, match="is a Python pickle"):
        load("evil.yaml")
    assert not Path("PWNED").exists()


def test_pt_files_and_torch_save_weights_are_refused():
    g = _trained_flow()
    torch.save(g.state_dict(), "g.pt")
    with pytest.raises(UnsafeFileError, match=r"refusing to load a \.pt file"):
        load("g.pt")
    # a torch.save archive swapped in for the weights, even with the hash updated to match
    path = save(g, "g.yaml")
    torch.save(g.state_dict(), "g.safetensors")
    doc = yaml.safe_load(path.read_text())
    doc["meta"]["sha256"] = sha256_file("g.safetensors")
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UnsafeFileError, match="zip archive"):
        load(path)
    # weights named as a pickle format in the YAML
    doc["meta"]["weights"] = "g.pt"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UnsafeFileError, match="refusing pickle-based weights"):
        load(path)


def test_not_a_saved_generator_or_wrong_format():
    Path("plain.yaml").write_text("kind: flow_color\n")
    with pytest.raises(SpecError, match="no 'meta' block"):
        load("plain.yaml")
    path = save(_trained_flow(), "g.yaml")
    doc = yaml.safe_load(path.read_text())
    doc["meta"]["format"] = "other/9"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="meta.format: got 'other/9'"):
        load(path)
    Path("junk.safetensors").write_bytes(b"\x00" * 4)
    doc["meta"].update(format=FORMAT, weights="junk.safetensors", sha256=sha256_file("junk.safetensors"))
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UnsafeFileError, match="not a safetensors file"):
        load(path)


def test_runs_and_models_uris_against_a_real_sqlite_store(mlflow_uri):
    from infomin import tracking

    g = _trained_flow(seed=5)
    path = save(g, "out/flow.yaml", provenance={"seed": 5})
    with tracking.start_run(experiment="io-test") as run:
        pass
    out = hub.log_view_generator(path, run_id=run.run_id, register_as="toy-flow", alias="current")
    assert out["registered_uri"] == "models:/toy-flow@current" and out["version"] == 1
    x = _x()
    ref = g(x)
    for source in (out["run_uri"], f"runs:/{run.run_id}/view_generator/flow.yaml",
                   "models:/toy-flow@current", "models:/toy-flow/1"):
        h = load(source)
        assert torch.equal(h(x).v1, ref.v1) and torch.equal(h(x).v2, ref.v2), source
        assert not any(p.requires_grad for p in h.parameters())
    # nothing pickled anywhere in the logged model or the run's artifacts
    files = tracking.list_artifacts(run.run_id)
    model_dir = hub.download_view_generator("models:/toy-flow@current").parents[1]
    files += [str(p) for p in model_dir.rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".pt", ".pth", ".cloudpickle"))]
    assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"
    # a second version moves the alias
    out2 = hub.log_view_generator(save(_trained_flow(seed=6), "out/flow2.yaml"),
                                       run_id=run.run_id, register_as="toy-flow", alias="current")
    assert out2["version"] == 2
    assert not torch.equal(load("models:/toy-flow@current")(x).v1, ref.v1)
    with pytest.raises(SpecError, match="MLflow could not resolve it"):
        load("models:/toy-flow@nope")


def test_registry_helpers_leave_mlflow_global_uri_and_env_alone(mlflow_uri, tmp_path):
    """Two stores one after the other (as two tests or two users in one process) stay apart."""
    import mlflow

    from infomin import tracking

    for i in range(2):
        uri = f"sqlite:///{tmp_path / f'store{i}.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        g = _trained_flow(seed=i)
        path = save(g, f"g{i}.yaml")
        with tracking.start_run(experiment="x") as run:
            pass
        hub.log_view_generator(path, run_id=run.run_id, register_as="flow")
        assert os.environ["MLFLOW_TRACKING_URI"] == uri and mlflow.get_tracking_uri() == uri
        assert torch.equal(load("models:/flow@current")(_x()).v1, g(_x()).v1)


def test_build_of_a_saved_generator_carries_its_weights():
    import torch

    import infomin.views as V

    built = V.build("learned/flow_toy")
    loaded = V.load("learned/flow_toy")
    fresh = V.build({k: v for k, v in V.load_spec("learned/flow_toy").items()})
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(built(x, generator=0).v2, loaded(x, generator=0).v2)
    assert not torch.allclose(fresh(x, generator=0).v2, loaded(x, generator=0).v2)
    assert any(p.requires_grad for p in built.parameters())
    assert not any(p.requires_grad for p in loaded.parameters())
