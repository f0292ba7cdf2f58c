"""The package's face and its layering: every public name imports, and imports run one way.

The layer rules are checked on the source (ast), so a forbidden import fails here even when the
code path that contains it is not exercised by another test.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import colkern

PACKAGE_DIR = Path(colkern.__file__).resolve().parent

# Names that users imported from `colkern` in 0.1.0: they must keep working.
NAMES_0_1 = ["ColPaliEncoder", "IndexFormatError", "MultiVectorIndex", "PackedDocs", "PageEmbedding",
             "QualityPredictor", "SearchResult", "backend_info", "patch_colpali_engine", "score_multi_vector",
             "unpatch_colpali_engine", "maxsim", "maxsim_bits", "maxsim_bits_ref", "maxsim_bits_topk",
             "maxsim_hamming", "maxsim_hamming_ref", "maxsim_hamming_topk", "maxsim_ref", "maxsim_topk", "pack",
             "pack_bits", "pack_bits_ref", "patch_pool", "patch_pool_ref", "search", "set_isa", "unpack_bits",
             "use_isa", "__version__"]

SUBPACKAGES = ["colkern.ops", "colkern.losses", "colkern.retrieval", "colkern.documents", "colkern.colpali", "colkern.quality",
               "colkern.testing", "colkern.siglip", "colkern.hybrid", "colkern.export",
               "colkern.distributed"]

# What each top-level part of the package may import from colkern (besides itself). The base
# modules (_types, _atomic, _lazy, _version) may be imported by everyone; nothing imports the
# package face (colkern/__init__.py) or the CLI.
BASE = {"_types", "_atomic", "_lazy", "_version", "_model_loading"}
ALLOWED = {
    "ops": {"_C", "triton_kernels"},
    "documents": set(),
    "retrieval": {"ops"},
    "_bench": {"ops"},
    "colpali": {"ops", "retrieval", "documents"},
    "quality": {"ops", "documents", "colpali"},
    "testing": {"ops", "colpali", "siglip"},
    "siglip": {"ops", "colpali", "documents"},
    "losses": {"ops", "colpali"},
    "hybrid": {"ops", "retrieval", "documents", "colpali", "siglip", "quality"},
    "distributed": {"ops", "retrieval", "documents", "colpali", "quality"},
    "export": {"ops", "retrieval", "colpali"},
    "cli": None,  # the top: may import any layer (but not the package face)
    "__main__": {"cli"},
}


def _modules():
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR)
        if rel.parts[0] in {"triton_kernels"} or rel.name == "__init__.py" and len(rel.parts) == 1:
            continue
        yield rel, ast.parse(path.read_text(), str(path))


def _colkern_imports(rel: Path, tree: ast.AST):
    """(target parts below colkern, imported names, line) for every import of colkern code."""
    pkg = list(rel.parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - node.level + 1] if node.level > 1 else pkg
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and (node.module == "colkern" or node.module.startswith("colkern.")):
                target = node.module.split(".")[1:]
            else:
                continue
            yield target, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "colkern" or a.name.startswith("colkern."):
                    yield a.name.split(".")[1:], [], node.lineno


def test_names_of_0_1_still_import_from_colkern():
    missing = [n for n in NAMES_0_1 if not hasattr(colkern, n)]
    assert not missing
    assert set(NAMES_0_1) <= set(colkern.__all__)


@pytest.mark.parametrize("package", ["colkern", *SUBPACKAGES])
def test_every_name_in_all_imports(package):
    mod = importlib.import_module(package)
    assert mod.__all__, f"{package} has an empty __all__"
    assert len(set(mod.__all__)) == len(mod.__all__), f"{package}.__all__ has duplicates"
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{package}.{name}"


def test_version_has_one_source():
    import tomllib

    from colkern._version import __version__

    assert colkern.__version__ == __version__
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]


def _layer_problems(rel: Path, tree: ast.AST):
    part = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    allowed = ALLOWED.get(part, set())
    for target, names, line in _colkern_imports(rel, tree):
        where = f"{rel}:{line}"
        if not target:  # `from colkern import X` / `from .. import X` at the top
            modules = [n for n in names if n == "_C" or (PACKAGE_DIR / n).is_dir()
                       or (PACKAGE_DIR / f"{n}.py").exists()]
            if not names or len(modules) != len(names):
                yield f"{where}: imports the package face (colkern/__init__.py)"
            if not modules:
                continue
            target, names = modules[:1], []
        head = target[0]
        if head == part or head in BASE:
            continue
        if allowed is not None and head not in allowed:
            yield f"{where}: {part} must not import colkern.{head}"
        private_names = [n for n in names if n.startswith("_")]
        if any(p.startswith("_") for p in target[1:]) or private_names:
            yield f"{where}: private colkern.{'.'.join(target)} {private_names} imported across packages"


def test_imports_run_down_the_layers():
    problems = [p for rel, tree in _modules() for p in _layer_problems(rel, tree)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source, where, expected", [
    ("from ..retrieval.index import MultiVectorIndex", "ops/bad.py", "ops must not import colkern.retrieval"),
    ("from ..ops._inputs import normalize_queries", "retrieval/bad.py", "private colkern.ops._inputs"),
    ("from ..ops.maxsim import _prepare", "retrieval/bad.py", "['_prepare'] imported across packages"),
    ("import colkern", "quality/bad.py", "imports the package face"),
    ("from .. import maxsim", "retrieval/bad.py", "imports the package face"),
])
def test_layer_checker_catches_violations(source, where, expected):
    """The checker itself must be able to fail."""
    problems = list(_layer_problems(Path(where), ast.parse(source)))
    assert any(expected in p for p in problems), problems
