"""The package's layers, read from its source: what each folder may import.

`core` (the loop and its stages) knows nothing of IPython, the kernel, comms, widgets, the
child kernel or the process-wide `runtime`; `child` and `backends` serve every front end and
import none of them; the front ends reach the child kernel and the backends only through
`runtime`. Every import counts, module-level or inside a function.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "viscoder_jupyter"
NAME = PACKAGE.name
FRONT = (f"{NAME}.runtime", f"{NAME}.frontends", f"{NAME}.tools")
FORBIDDEN = {
    "core": ("IPython", "ipykernel", "comm", "ipywidgets", f"{NAME}.child", *FRONT),
    "child": FRONT,
    "backends": FRONT,
    "frontends": (f"{NAME}.child", f"{NAME}.backends", f"{NAME}.tools"),
}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, package_dir: Path = PACKAGE) -> set[str]:
    """Absolute names of every module (or module attribute) the file imports."""
    module = module_name(path, package_dir)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names)
    return names


def violations(path: Path, forbidden: tuple[str, ...], package_dir: Path = PACKAGE) -> list[str]:
    return sorted(
        name
        for name in imported(path, package_dir)
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    )


def layer_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(layer):
    files = layer_files(layer)
    assert files, f"no modules in {layer}/"
    found = {str(p.relative_to(PACKAGE)): v for p in files if (v := violations(p, FORBIDDEN[layer]))}
    assert not found, f"{layer}/ imports what it must not: {found}"


@pytest.mark.parametrize(
    "line, layer",
    [
        ("from IPython.display import display", "core"),
        ("import ipywidgets", "core"),
        ("from .. import runtime", "core"),
        ("from ..frontends.progress import make_view", "core"),
        ("from ..child.executor import ChildKernel", "core"),
        ("from ..tools import bench", "backends"),
        ("from ..runtime import child_kernel", "child"),
        ("from ..backends import backend_class", "frontends"),
    ],
)
def test_the_check_sees_a_forbidden_import(tmp_path, line, layer):
    """The rule holds for imports written at any depth (here: inside a function)."""
    fake = tmp_path / NAME / layer / "added.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(f"def later():\n    {line}\n", encoding="utf-8")
    assert violations(fake, FORBIDDEN[layer], tmp_path / NAME)
