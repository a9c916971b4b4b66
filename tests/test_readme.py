"""The README's code runs as printed (up to the learned provider, which arrives with its plugin)."""

import re
import subprocess
import sys


def test_readme_examples_run(repo, tmp_path):
    text = (repo / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    swap = blocks[0].split("u_learned")[0]  # the "fno" provider needs the torch plugin (issue #6)
    for k, code in enumerate((swap, blocks[1])):
        script = tmp_path / f"readme_{k}.py"
        script.write_text(code)
        subprocess.run([sys.executable, str(script)], check=True, cwd=tmp_path)
