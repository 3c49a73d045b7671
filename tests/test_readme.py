"""The README's tour runs as written, and its setup commands are the ones CI runs."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def block_after(marker):
    """The body of the first fenced code block after ``marker``."""
    match = re.search(re.escape(marker) + r"\s*```\w*\n(.*?)```", README, re.S)
    assert match, f"README.md has no code block after {marker!r}"
    return match.group(1)


def test_the_tour_runs_and_its_comments_are_true(capsys):
    code = block_after("<!-- tested: tests/test_readme.py runs this block -->")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["logits"].shape == (2, 1000)
    assert namespace["features"].shape == (2, 960, 7, 7)
    assert namespace["parts"]["blocks.3.0.ghost1.short_conv.gate"].shape == (2, 72, 28, 28)
    assert "6,156,908" in capsys.readouterr().out


def test_the_two_setup_commands_are_what_ci_runs():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "readme_command run" in ci and "readme_command test" in ci
    assert "ghostnp classify --sample" in block_after("<!-- ci:run -->")
    assert "pytest" in block_after("<!-- ci:test -->") and '"torch==2.13.0"' in block_after("<!-- ci:test -->")
