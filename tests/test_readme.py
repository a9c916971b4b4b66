"""The README's code runs as printed (with a tiny checkpoint standing in for a trained fno.pt)."""

import re
import subprocess
import sys


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
