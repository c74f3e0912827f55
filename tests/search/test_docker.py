"""docker/: the compose file's invariants, checked by parsing it (no Docker engine runs here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
SECRET = re.compile(r"(?i)(password|passwd|secret|token)")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _strings(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def test_services_and_volumes(compose):
    assert {"postgres", "mlflow", "worker"} <= set(compose["services"])
    assert compose["services"]["worker"]["deploy"]["replicas"]
    assert compose["services"]["mlflow"]["volumes"][0].startswith("mlartifacts:")
    assert {"pgdata", "mlartifacts"} <= set(compose["volumes"])


def test_no_plaintext_secret_anywhere(compose):
    for path, value in _strings(compose):
        for m in re.finditer(r"://([^:/@\s]+):([^@\s]+)@", value):  # user:password@ in a URL
            assert m.group(2).startswith("${"), f"{path}: literal password in a URL"
        if SECRET.search(path.rsplit(".", 1)[-1]):
            assert value == "" or value.startswith("${"), f"{path}: literal secret"


def test_no_secret_on_a_command_line(compose):
    for name, svc in compose["services"].items():
        for key in ("command", "entrypoint"):
            text = " ".join(svc.get(key) or []) if isinstance(svc.get(key), list) else str(svc.get(key) or "")
            assert "://" not in text.replace("http://mlflow", ""), f"{name}.{key} holds a URL"
            assert not SECRET.search(text.replace("MLFLOW_TRACKING_PASSWORD", "")) or "environ" in text, \
                f"{name}.{key} mentions a secret"
    mlflow = compose["services"]["mlflow"]
    assert "--backend-store-uri" not in mlflow["command"]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://infomin:${")


def test_ports_bind_to_localhost_unless_configured(compose):
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {port}"


def test_worker_runs_the_cli_command_the_tests_run(compose):
    """The worker's command parses as `infomin study run <study file> --workers N` and its study ships."""
    from infomin.cli import app

    worker = compose["services"]["worker"]
    args = worker["command"]
    assert args[:2] == ["study", "run"] and "--storage" not in args, "the storage comes from $INFOMIN_STORAGE"
    study_file = REPO / args[2].removeprefix("/opt/infomin/")
    assert study_file.is_file()
    group = typer.main.get_command(app)
    ctx = group.make_context("infomin", list(args), resilient_parsing=True)
    sub = group.get_command(ctx, "study")
    sub_ctx = sub.make_context("study", list(args[1:]), parent=ctx, resilient_parsing=True)
    run = sub.get_command(sub_ctx, "run")
    params = run.make_context("run", list(args[2:]), parent=sub_ctx).params
    assert params["study"] == args[2] and params["workers"] == 1
    assert worker["environment"]["INFOMIN_STORAGE"].startswith("postgresql://infomin:${POSTGRES_PASSWORD")
    assert worker["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    for df in ("Dockerfile.cpu", "Dockerfile.cuda"):
        text = (DOCKER / df).read_text()
        assert 'ENTRYPOINT ["infomin"]' in text and 'CMD ["study", "run", "/opt/infomin/studies/' in text


def test_env_example_has_no_real_secret():
    env = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    assert "change-me" in env["POSTGRES_PASSWORD"] and env["MLFLOW_TRACKING_PASSWORD"] == ""
    assert env["BIND_ADDRESS"] == "127.0.0.1"


def test_compose_validates_with_docker_compose_when_installed(tmp_path):
    """Debian's docker-compose (`apt-get install docker-compose`) resolves the file; YAML checks run anyway."""
    exe = shutil.which("docker-compose")
    if exe is None:
        assert yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
        return
    env = tmp_path / ".env"
    env.write_text((DOCKER / ".env.example").read_text())
    out = subprocess.run([exe, "-f", str(DOCKER / "compose.yaml"), "--env-file", str(env), "config"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    resolved = yaml.safe_load(out.stdout)
    assert resolved["services"]["worker"]["deploy"]["replicas"] == 2
    assert resolved["services"]["mlflow"]["ports"][0].startswith("127.0.0.1:5000:5000")
    missing = subprocess.run([exe, "-f", str(DOCKER / "compose.yaml"), "config"], capture_output=True, text=True,
                             timeout=60, env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stderr, "no default password"
