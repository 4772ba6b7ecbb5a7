"""Input errors are one line on stderr naming what is wrong, exit code 2, no traceback."""

import subprocess
import sys

import pytest


def physground(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "physground.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_scenario(tmp_path):
    result = physground("generate", "rigid/projectil", "--root", str(tmp_path))
    assert_one_line_error(result, "unknown scenario 'rigid/projectil'",
                          "did you mean 'rigid/projectile'")


def test_parameter_outside_physical_range(tmp_path):
    result = physground("generate", "rigid/projectile", "--param", "restitution=1.7",
                        "--root", str(tmp_path))
    assert_one_line_error(result, "'restitution' = 1.7", "physical range [0, 1]")


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ('name = "x"\n[[scenario]]\nname = "rigid/projectile"\nhorizn = 4\n',
         ["unknown key 'horizn'", "did you mean 'horizon'"]),
        ('name = "x"\n[[scenario]\nname = "rigid/projectile"\n', ["is not valid TOML"]),
        ('name = "x"\nmodels = ["copy-lats"]\n[[scenario]]\nname = "rigid/projectile"\n',
         ["unknown model 'copy-lats'", "did you mean 'copy-last'"]),
        ('name = "x"\n[[scenario]]\nname = "rigid/projectile"\ncontext = "six"\n',
         ["scenario[0].context: expected an integer, got 'six'"]),
        ('name = "x"\n[[scenario]]\nname = "rigid/projectile"\ncontext = 20\nhorizon = 50\n',
         ["exceeds num_frames"]),
    ],
)
def test_malformed_suite_file(tmp_path, content, fragments):
    suite = tmp_path / "bad.toml"
    suite.write_text(content)
    result = physground("run", "--suite", str(suite), "--root", str(tmp_path))
    assert_one_line_error(result, str(suite), *fragments)


def test_unknown_suite_name(tmp_path):
    assert_one_line_error(physground("run", "--suite", "quik", "--root", str(tmp_path)),
                          "unknown suite 'quik'", "did you mean 'quick'")


def test_scenarios_lists_ranges_per_split():
    result = physground("scenarios")
    assert result.returncode == 0, result.stderr
    assert "rigid/projectile" in result.stdout
    line = next(x for x in result.stdout.splitlines() if "launch_speed" in x)
    assert "[2.5, 4]" in line and "[4.5, 5.5]" in line and line.lstrip().startswith("*")
