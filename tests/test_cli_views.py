"""``infomin views`` through typer's CliRunner: list, show (three image sources), render-all, and
clean errors (exit 2, one line) for bad names."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from infomin.cli import app

runner = CliRunner()
PNG = b"\x89PNG"


def test_list_shows_presets_and_kinds():
    r = runner.invoke(app, ["views", "list"])
    assert r.exit_code == 0, r.output
    for word in ("simclr", "lab_l_ab", "random_resized_crop", "patch_distance", "augment", "pair"):
        assert word in r.output


@pytest.mark.parametrize("source", ["sample", "digits"])
def test_show_writes_a_png(tmp_path, source):
    out = tmp_path / "grid.png"
    r = runner.invoke(app, ["views", "show", "simclr", "--out", str(out), "--n", "3", "--seed", "1",
                            "--image-source", source, "--size", "32"])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == PNG


def test_show_a_yaml_file_and_a_split(tmp_path):
    spec = tmp_path / "mine.yaml"
    spec.write_text("kind: pair\nspatial: {kind: random_resized_crop, size: 24}\nsplit: ydbdr\n")
    r = runner.invoke(app, ["views", "show", str(spec), "--out", str(tmp_path / "g.png"), "--n", "2"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "g.png").stat().st_size > 1000


def test_show_cifar(tmp_path, cifar_dir):
    r = runner.invoke(app, ["views", "show", "lab_l_ab", "--out", str(tmp_path / "c.png"), "--n", "2",
                            "--image-source", "cifar"])
    assert r.exit_code == 0, r.output


def test_bad_names_give_one_clean_line_and_exit_2(tmp_path):
    r = runner.invoke(app, ["views", "show", "simclr2", "--out", str(tmp_path / "x.png")])
    assert r.exit_code == 2
    assert "no such preset" in r.output and "simclr" in r.output and "Traceback" not in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: random_resized_crop\nsizes: 3\n")
    r = runner.invoke(app, ["views", "show", str(bad), "--out", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and "views.sizes" in r.output
    r = runner.invoke(app, ["views", "show", "simclr", "--image-source", "imagenet"])
    assert r.exit_code == 2
    assert not (tmp_path / "x.png").exists()


def test_render_all_writes_one_grid_per_preset(tmp_path):
    from infomin.views import presets

    r = runner.invoke(app, ["views", "render-all", "--out", str(tmp_path / "d"), "--n", "2",
                            "--size", "32"])
    assert r.exit_code == 0, r.output
    written = sorted(p.name for p in (tmp_path / "d").glob("*.png"))
    assert written == sorted(n.replace("/", "_") + ".png" for n in presets())
