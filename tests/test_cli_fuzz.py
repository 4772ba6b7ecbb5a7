"""Every command fed malformed values (wrong types, negative counts, NaN, unknown keys,
empty files, binary junk) answers with one line ``error: ...`` and exit code 2: never a
traceback. Run in-process through typer's CliRunner, which goes through the same error
handling (`physground.cli.PhysgroundGroup`) as the installed command."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from physground.cli import app

GOOD_SUITE = 'name = "x"\n[[scenario]]\nname = "rigid/projectile"\n'
SUITES = {
    "empty": "",
    "junk": bytes(range(256)) * 4,
    "utf8junk": "\x00\x01name = \x02\n[[[",
    "string_count": GOOD_SUITE + 'config = { num_frames = "30" }\n',
    "negative_rollouts": GOOD_SUITE + "rollouts = -1\n",
    "nan_horizon": GOOD_SUITE + "horizon = nan\n",
    "inf_dt": GOOD_SUITE + "config = { dt = inf }\n",
    "unknown_key": GOOD_SUITE + "horizn = 4\n",
    "models_string": 'name = "x"\nmodels = "copy-last"\n' + GOOD_SUITE[11:],
    "name_int": 'name = "x"\n[[scenario]]\nname = 3\n',
    "seed_negative": 'name = "x"\nseed = -1\n' + GOOD_SUITE[11:],
    "empty_splits": 'name = "x"\n[defaults]\nsplits = []\n' + GOOD_SUITE[11:],
    "train_option_type": GOOD_SUITE + '[[training]]\nmodel = "state-gnn"\n'
                                      'options = { batch_size = "8" }\n',
    "train_steps_zero": GOOD_SUITE + '[[training]]\nmodel = "state-gnn"\nsteps = 0\n',
    "compare_one": 'name = "x"\nmodels = ["copy-last"]\ncompare = [["copy-last"]]\n'
                   + GOOD_SUITE[11:],
    "bool_count": GOOD_SUITE + "context = true\n",
    "no_scenarios": 'name = "x"\n',
    "nested_table_wrong": GOOD_SUITE + "config = 5\n",
}
GENERATE = [
    ["--config", "bogus=3"], ["--config", "num_frames=abc"], ["--config", "num_frames=-5"],
    ["--config", "num_frames=1"], ["--config", "dt=nan"], ["--config", "dt=inf"],
    ["--config", "dt=-0.1"], ["--config", "render=maybe"], ["--config", "image_size=2.5"],
    ["--config", "noequals"], ["--config", "=3"], ["--param", "restitution=nan"],
    ["--param", "restitution=abc"], ["--param", "restitution=1.7"], ["--param", "nosuch=1"],
    ["--param", "gravity=-inf"], ["--seed", "-1"], ["--seed", "abc"], ["--count", "0"],
    ["--count", "-3"], ["--count", "1.5"], ["--shard-size", "0"], ["--split", "nope"],
    ["--bogus"],
]
TRAIN = [
    ["--steps", "abc"], ["--steps", "-1"], ["--lr", "nan"], ["--lr", "-1"],
    ["--batch-size", "0"], ["--physics", "strain=abc"], ["--physics", "strain=-2"],
    ["--loss-options", "strain_tol=nan"], ["--loss-options", "strain_tol"],
    ["--model", "video-transformer", "--model-config", "dimm=3"],
    ["--model", "video-transformer", "--model-config", "dim=abc"],
    ["--unroll-mode", "sideways"], ["--dataset", "/nonexistent/dataset"], ["--count", "0"],
    ["--model", "state-gnm"], ["--num-frames", "1"], ["--grad-clip", "abc"],
    ["--threads", "-1"], ["--scenario", "rigid/projectil"], ["--device", "tpu"],
]


def cases(tmp):
    """(name, argv) pairs; suite files are written under ``tmp``."""
    out = []
    for name, content in SUITES.items():
        path = tmp / f"{name}.toml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        out.append((f"run-{name}", ["run", "--suite", str(path), "--root", str(tmp)]))
        if name in ("empty", "junk", "string_count", "unknown_key"):
            out.append((f"dry-run-{name}", ["run", "--dry-run", "--suite", str(path)]))
            out.append((f"evaluate-{name}", ["evaluate", "--suite", str(path),
                                             "--root", str(tmp)]))
            out.append((f"export-{name}", ["export-context", "--suite", str(path),
                                           "--out", str(tmp / "ctx"), "--root", str(tmp)]))
    out += [(f"generate{i}", ["generate", "rigid/projectile", *args, "--root", str(tmp)])
            for i, args in enumerate(GENERATE)]
    out += [("generate-unknown", ["generate", "rigid/projectil", "--root", str(tmp)]),
            ("generate-empty-name", ["generate", "", "--root", str(tmp)])]
    out += [(f"train{i}", ["train", *args, "--root", str(tmp), "-q"])
            for i, args in enumerate(TRAIN)]
    out += [
        ("run-suite-dir", ["run", "--suite", str(tmp), "--root", str(tmp)]),
        ("run-missing", ["run", "--suite", str(tmp / "absent.toml")]),
        ("run-unknown-suite", ["run", "--suite", "quik"]),
        ("run-scenario", ["run", "--scenario", "rigid/bouce", "--root", str(tmp)]),
        ("run-scenario-tag", ["run", "--scenario", "tag:nope", "--root", str(tmp)]),
        ("run-model", ["run", "--model", "copy-lats", "--root", str(tmp)]),
        ("run-device", ["run", "--device", "gpu", "--root", str(tmp)]),
        ("run-workers", ["run", "--workers", "abc", "--root", str(tmp)]),
        ("run-executor", ["run", "--executor", "nope", "--root", str(tmp)]),
        ("run-json", ["run", "--json", "--root", str(tmp)]),
        ("dry-run-scenario", ["run", "--dry-run", "--scenario", "fluid/smok"]),
        ("evaluate-predictions", ["evaluate", "--predictions", str(tmp / "nope"),
                                  "--root", str(tmp)]),
        ("evaluate-names", ["evaluate", "--name", "a", "--root", str(tmp)]),
        ("export-no-out", ["export-context"]),
        ("report-missing", ["report", str(tmp / "no-run")]),
        ("report-three", ["report", str(tmp), str(tmp), str(tmp)]),
        ("report-compare", ["report", str(tmp), "--compare", "ab"]),
        ("report-junk-run", ["report", str(tmp / "junk.toml")]),
        ("scenarios-tag", ["scenarios", "--tag", "clth"]),
        ("metrics-tag", ["metrics", "--tag", "pixel"]),
        ("models-tag", ["models", "--tag", "learnd"]),
        ("scenarios-extra", ["scenarios", "--json", "extra"]),
        ("unknown-command", ["frobnicate"]),
        ("unknown-option", ["--frobnicate"]),
    ]
    return out


def test_malformed_invocations_give_one_line_errors(tmp_path):
    runner = CliRunner()
    checked = 0
    for name, argv in cases(tmp_path):
        result = runner.invoke(app, argv)
        where = f"{name}: physground {' '.join(argv)}\n{result.output}"
        assert result.exit_code == 2, where
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            where + repr(result.exception))
        assert "Traceback" not in result.output, where
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), where
        checked += 1
    assert checked >= 50, checked


@pytest.mark.parametrize(("argv", "fragment"), [
    (["generate", "rigid/projectile", "--config", "num_frames=abc"],
     "--config:num_frames: expected an integer, got 'abc'"),
    (["generate", "rigid/projectile", "--config", "bogus=3"],
     "--config: unknown key 'bogus'"),
    (["generate", "rigid/projectile", "--seed", "-1"], "'--seed'"),
    (["generate", "rigid/projectile", "--param", "gravity=nan"],
     "--param gravity: expected a finite number"),
    (["scenarios", "--tag", "clth"], "did you mean 'cloth'"),
])
def test_errors_name_the_option_and_what_was_expected(argv, fragment):
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2 and fragment in result.stderr, result.output
