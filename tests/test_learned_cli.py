"""`physground train` command (mounted by the CLI from `physground.learned.cli`)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from physground.errors import ValidationError
from physground.learned.cli import parse_weights, train_command
from physground.learned.training import load_model


def test_train_command_generates_data_trains_and_finetunes(tmp_path):
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("noop")(lambda: None)
    common = ["--scenario", "rigid/projectile", "--root", str(tmp_path),
              "--count", "2", "--num-frames", "12", "-q", "--batch-size", "4"]
    result = CliRunner().invoke(app, ["train", *common, "--out", str(tmp_path / "base"),
                                      "--steps", "3"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["train", *common, "--out", str(tmp_path / "tuned"),
                                      "--steps", "2", "--physics", "ballistic=1",
                                      "--physics", "penetration=10",
                                      "--finetune-from", str(tmp_path / "base")])
    assert result.exit_code == 0, result.output
    assert "ballistic" in result.output and "penetration" in result.output
    assert load_model(tmp_path / "tuned").trained_steps == 5


def test_parse_weights():
    assert parse_weights(["strain=300", "energy = 1"]) == {"strain": 300.0, "energy": 1.0}
    for bad in ("strain", "strain=x", "=1", "strain=-1", "strain=nan", "strain=inf"):
        with pytest.raises(ValidationError, match="NAME=WEIGHT"):
            parse_weights([bad])


def test_train_options_are_generated_from_train_config():
    import dataclasses

    from physground.learned.training import TrainConfig

    app = typer.Typer()
    app.command("train")(train_command)
    app.command("noop")(lambda: None)
    help_text = CliRunner().invoke(app, ["train", "--help"], terminal_width=200).output
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("checkpoint_dir", "progress"):
            continue  # --out and -q
        flag = "--physics" if f.name == "loss_weights" else "--" + f.name.replace("_", "-")
        assert flag in help_text, flag


def test_train_shares_the_data_cache_records_its_data_and_refuses_a_foreign_resume(tmp_path):
    import json

    app = typer.Typer()
    app.command("train")(train_command)
    app.command("noop")(lambda: None)
    common = ["--root", str(tmp_path), "--count", "2", "--num-frames", "12", "-q",
              "--batch-size", "2", "--steps", "2", "--grad-clip", "0.5",
              "--loss-options", "input_noise=0.001"]
    out = tmp_path / "ckpt"
    first = CliRunner().invoke(app, ["train", *common, "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert list((tmp_path / "data" / "rigid" / "projectile").iterdir())  # shared cache
    record = json.loads((out / "config.json").read_text())
    assert record["extra"]["train_config"]["grad_clip"] == 0.5
    assert record["extra"]["train_config"]["loss_options"] == {"input_noise": 0.001}
    assert record["extra"]["dataset"]["scenario"] == "rigid/projectile"
    assert record["extra"]["dataset"]["rollouts"] == 2
    # more steps on the same data and settings: a legitimate resume
    more = CliRunner().invoke(app, ["train", *common, "--out", str(out), "--resume",
                                    "--steps", "3"])
    assert more.exit_code == 0, more.output
    assert load_model(out).trained_steps == 3
    other_data = CliRunner().invoke(app, ["train", *common, "--out", str(out), "--resume",
                                          "--scenario", "rigid/bounce", "--steps", "4"])
    assert isinstance(other_data.exception, ValidationError)
    assert "trained on 2 rollouts of rigid/projectile" in str(other_data.exception)
    other_config = CliRunner().invoke(app, ["train", *common, "--out", str(out), "--resume",
                                            "--lr", "0.01", "--steps", "4"])
    assert isinstance(other_config.exception, ValidationError)
    assert "lr 0.001 -> 0.01" in str(other_config.exception)
    assert load_model(out).trained_steps == 3  # nothing was overwritten
