"""The README's code runs as printed (with a tiny checkpoint standing in for a trained fno.pt)."""

import re
import subprocess
import sys

import pytest


def test_readme_examples_run(repo, tmp_path):
    text = (repo / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    from fem_ms.data import GMsFEMBasisConfig, generate
    from fem_ms_torch.basis.train import train_basis

    data = generate(GMsFEMBasisConfig(name="b", samples=1, fine=100, coarse=5, n_basis=8), tmp_path,
                    progress=False)
    train_basis(data, tmp_path / "fno.pt", epochs=1, width=4, depth=1, modes=2, progress=False)
    for k, code in enumerate(blocks[:2]):
        script = tmp_path / f"readme_{k}.py"
        script.write_text(code)
        subprocess.run([sys.executable, str(script)], check=True, cwd=tmp_path)


@pytest.mark.torch  # the table's train-basis command comes with the torch plugin
def test_readme_first_screen_table_and_figure(repo):
    """The "I want to … → run" table's commands parse with fem-ms's own parser (PETSc options
    split off as the CLI does), the files they name exist, and the figure is committed."""
    import shlex

    from fem_ms.cli import build_parser, split_petsc_options

    text = (repo / "README.md").read_text()
    first_screen = text[:text.index("## What works today")]
    commands = re.findall(r"^\| [^|]+ \| `scripts/env (fem-ms [^`]+)`", first_screen, flags=re.M)
    assert len(commands) == 5
    parser, _ = build_parser()
    for command in commands:
        own, _ = split_petsc_options(shlex.split(command)[1:])
        args = parser.parse_args(own)
        for value in vars(args).values():
            if isinstance(value, str) and value.startswith("demos/"):
                assert (repo / value).is_file(), (command, value)
    figures = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", first_screen)
    assert figures and all((repo / f).is_file() for f in figures)
