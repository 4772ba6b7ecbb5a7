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
    common = ["--scenario", "rigid/projectile", "--data-root", str(tmp_path / "data"),
              "--count", "2", "--num-frames", "12", "--no-progress", "--batch-size", "4"]
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
    for bad in ("strain", "strain=x", "=1", "strain=-1"):
        with pytest.raises(ValidationError, match="NAME=WEIGHT"):
            parse_weights([bad])
