import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points


def test_fem_ms_does_not_import_torch():
    code = ("import sys, fem_ms, fem_ms.cli, fem_ms.gmsfem; from fem_ms import *; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_info():
    out = subprocess.run([sys.executable, "-m", "fem_ms.cli", "info"], check=True,
                         capture_output=True, text=True).stdout
    assert '"petsc": "3.26.0"' in out and '"slepc": "3.26.0"' in out


def test_cli_solve_with_gmsfem(tmp_path):
    out = subprocess.run([sys.executable, "-m", "fem_ms.cli", "solve", "--problem", "richards", "--fine", "20",
                          "--coarse", "2", "--n-basis", "4", "--out", str(tmp_path / "u.vtu")],
                         check=True, capture_output=True, text=True).stdout
    assert "GMsFEM (slepc, N_bf=4, 36 coarse DOFs)" in out
    assert (tmp_path / "u.vtu").is_file()


def _fake_plugin(root, entry_points: str, module: str = ""):
    """Metadata of an installed distribution ``fake-plugin`` with ``entry_points`` (and a module)."""
    info = root / "fake_plugin-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 0\n")
    (info / "entry_points.txt").write_text(entry_points)
    if module:
        (root / "fake_plugin_commands.py").write_text(module)
    return root


def _cli(*args, path=None):
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = f"{path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.run([sys.executable, "-m", "fem_ms.cli", *args], capture_output=True, text=True, env=env)


def test_cli_commands_come_from_entry_points(tmp_path):
    plugin = _fake_plugin(tmp_path, "[fem_ms.cli_commands]\nhello = fake_plugin_commands:add_hello\n",
                          textwrap.dedent("""
        def add_hello(subparsers):
            parser = subparsers.add_parser("hello", help="greet someone")
            parser.add_argument("name")
            parser.set_defaults(run=lambda args: print(f"hello {args.name}") or 3)
        """))
    assert "hello" not in _cli("--help").stdout
    listed = _cli("--help", path=plugin)
    assert listed.returncode == 0 and "greet someone" in listed.stdout and "solve" in listed.stdout
    ran = _cli("hello", "world", path=plugin)
    assert (ran.returncode, ran.stdout) == (3, "hello world\n")


def test_cli_broken_plugin_command(tmp_path):
    """A plugin command that fails to import is named when used, and does not break the others."""
    plugin = _fake_plugin(tmp_path, "[fem_ms.cli_commands]\nbroken = fake_plugin_missing_module:add\n")
    listed = _cli("--help", path=plugin)
    assert listed.returncode == 0 and "generate" in listed.stdout
    assert "plugin command broken could not be loaded" in listed.stderr and "fake-plugin" in listed.stderr
    used = _cli("broken", path=plugin)
    assert used.returncode == 1
    assert used.stderr.splitlines() == [
        "fem-ms: the broken command could not be loaded: broken = fake_plugin_missing_module:add (fake-plugin): "
        "ModuleNotFoundError: No module named 'fake_plugin_missing_module'"]


def test_cli_plugin_command_must_add_its_parser(tmp_path):
    plugin = _fake_plugin(tmp_path, "[fem_ms.cli_commands]\nhello = fake_plugin_commands:add_other\n",
                          "def add_other(subparsers):\n    subparsers.add_parser('other')\n")
    out = _cli("--help", path=plugin)
    assert out.returncode != 0 and "hello = fake_plugin_commands:add_other (fake-plugin) added no command " \
                                   "named 'hello'" in out.stderr


def test_cli_torch_commands_listed_or_plugin_named():
    """With fem-ms-torch installed, --help lists its commands; without it, asking for one says, in one
    line and with exit status 2, which plugin to install."""
    from fem_ms.cli import COMMAND_GROUP, PLUGIN_COMMANDS

    registered = {ep.name for ep in entry_points(group=COMMAND_GROUP)}
    listed = _cli("--help").stdout
    for command, plugin in PLUGIN_COMMANDS.items():
        if command in registered:
            assert command in listed
        else:
            assert command not in listed
            asked = _cli(command, "train.toml")
            assert asked.returncode == 2 and asked.stdout == ""
            assert asked.stderr.splitlines() == [
                f"fem-ms: error: {command} comes with the {plugin} plugin, which is not installed "
                "(pip install ./plugins in the fem-ms source; docs/install.md)"]
