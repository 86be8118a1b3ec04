"""The version matrix (noxfile.py) leaves out only what its docstring names, with the reason.

A test marked ``soak`` runs in ``scripts/test.sh`` only: each must be named in noxfile.py's
docstring (a test function by its name, a module marked whole by its file name), so that what
the matrix does not cover is written down where the matrix is.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def marked_soak(path: Path) -> list[str]:
    """The names in ``path`` marked soak: the file's, for a module-wide ``pytestmark``."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "pytestmark" for target in node.targets):
            if "mark.soak" in ast.unparse(node.value):
                names.append(path.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if any("mark.soak" in ast.unparse(decorator) for decorator in node.decorator_list):
                names.append(node.name)
    return names


def test_every_soak_test_is_named_in_the_matrix_docstring():
    noxfile = (ROOT / "noxfile.py").read_text()
    docstring = ast.get_docstring(ast.parse(noxfile)) or ""
    soak = [name for path in sorted((ROOT / "tests").glob("test_*.py")) for name in marked_soak(path)]
    assert "test_scale_defaults.py" in soak, "the soak marks were not found: marked_soak no longer reads them"
    unnamed = [name for name in soak if name not in docstring]
    assert unnamed == [], f"marked soak but not named in noxfile.py's docstring (say why there): {unnamed}"
    assert '"not browser and not soak"' in noxfile, "the matrix sessions no longer leave out the soak tests"
