"""The import graph keeps the layers that pyproject.toml's ``[tool.importlinter]`` draws: no
layer imports one above it (``outbox`` no service, ``effects`` nothing of ``api``), and no
package's modules import each other in a cycle."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(source: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's contracts checked on the payhook package found under ``source``."""
    return subprocess.run([str(LINT), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(source)},
                          capture_output=True, text=True, timeout=60)


def test_the_tree_keeps_its_layers_and_has_no_cycles():
    result = lint(ROOT / "src", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_catch_an_import_from_above_and_a_cycle(tmp_path):
    """The contracts are not vacuous: a copy of the tree whose outbox imports a service, and
    whose effect imports the API, breaks both the layers and the acyclic contract."""
    shutil.copytree(ROOT / "src" / "payhook", tmp_path / "payhook",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for module, imported in [("outbox/store.py", "payhook.services.sessions"),
                             ("effects/invoices.py", "payhook.api.state")]:
        with (tmp_path / "payhook" / module).open("a") as file:
            file.write(f"\nimport {imported}  # noqa\n")
    result = lint(tmp_path, tmp_path)
    assert result.returncode != 0
    for broken in ("payhook.outbox.store -> payhook.services.sessions",
                   "payhook.effects.invoices -> payhook.api.state",
                   "No cycles are allowed in payhook."):
        assert broken in result.stdout, result.stdout
