"""`runway-models generate` through the runtime's CLI: arguments handed to the generator only when it runs, a
missing `deploy` extra named with what to install, and no runtime module importing the generator."""

from __future__ import annotations

import ast

import pytest

import deploy.cli
from serve.cli import main
from tests.helpers.paths import MODELS_JSON, REPO


def test_runway_models_generate_runs_the_generator(tmp_path, capsys):
    assert main(["generate", str(MODELS_JSON), "--out", str(tmp_path / "out"), "--target", "serve-config"]) == 0
    assert "serve-config.yaml" in capsys.readouterr().out
    assert (tmp_path / "out" / "serve-config.yaml").is_file()


def test_generate_help_is_the_generators(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["generate", "--help"])
    assert exited.value.code == 0
    assert "--kube-version" in capsys.readouterr().out


def test_other_subcommands_still_refuse_unknown_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["validate", str(MODELS_JSON), "surplus"])
    assert "unrecognized arguments: surplus" in capsys.readouterr().err


def test_a_missing_extra_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(deploy.cli, "EXTRA_MODULES", ("jsonschema", "no_such_module_for_this_test"))
    code = main(["generate", str(MODELS_JSON), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "no_such_module_for_this_test" in err and "runway-models[deploy]" in err
    assert not (tmp_path / "out").exists()


def _deploy_imports(path) -> list[tuple[int, bool]]:
    """(line, at module level) of every import of the deploy package in one file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if any(n == "deploy" or n.startswith("deploy.") for n in names):
            found.append((node.lineno, id(node) in top))
    return found


def test_the_runtime_never_imports_the_generator():
    for path in sorted((REPO / "serve").rglob("*.py")):
        imports = _deploy_imports(path)
        if path.name == "cli.py" and path.parent.name == "serve":
            assert imports and not any(top for _, top in imports), "serve/cli.py imports deploy only when run"
        else:
            assert imports == [], f"{path.relative_to(REPO)} imports the generator at {imports}"
