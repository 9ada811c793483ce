"""Every public name is documented and declared in the type stubs."""

import ast
import inspect
import pathlib

import phaseflow as pf
from phaseflow import _phaseflow

STUBS = pathlib.Path(pf.__file__).with_name("_phaseflow.pyi")


def test_public_names_have_docstrings():
    for name in pf.__all__:
        obj = getattr(pf, name)
        if inspect.isclass(obj) or callable(obj):
            assert (obj.__doc__ or "").strip(), f"phaseflow.{name} has no docstring"


def test_stubs_declare_every_native_name():
    tree = ast.parse(STUBS.read_text())
    declared = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    declared |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    native = {n for n in dir(_phaseflow) if not n.startswith("_")} | {"__version__"}
    assert native - declared == set(), "names in the module but not in _phaseflow.pyi"
    assert declared - native == set(), "names in _phaseflow.pyi but not in the module"
    # Methods too: each class's public methods and properties match the stubs'.
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        stubbed = {m.name for m in cls.body if isinstance(m, ast.FunctionDef) and not m.name.startswith("_")}
        stubbed |= {m.target.id for m in cls.body if isinstance(m, ast.AnnAssign)}
        real = getattr(_phaseflow, cls.name)
        if issubclass(real, Exception):
            continue  # attributes are set per instance
        actual = {m for m in dir(real) if not m.startswith("_")}
        assert actual == stubbed, f"{cls.name}: {actual ^ stubbed}"


def test_the_package_is_marked_typed():
    assert pathlib.Path(pf.__file__).with_name("py.typed").is_file()
