"""The dashboard's static files as a browser and a wheel see them: native ES modules (no
build step) that import each other by relative paths, served as JavaScript (browsers refuse
a module script of any other type), shipped as package data, and free of HTML parsing."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from alecton.web.routes.dashboard import STATIC

from tests.unit.test_web_server import client, forbidden

REPO = Path(__file__).resolve().parents[2]
STATIC_DIR = Path(str(STATIC))
MODULES = sorted(path.name for path in STATIC_DIR.glob("*.js"))
IMPORT = re.compile(r"^import .*? from '([^']+)';$", re.MULTILINE)


def imports(name: str) -> list[str]:
    return IMPORT.findall((STATIC_DIR / name).read_text())


def test_every_import_names_a_module_beside_it_and_every_module_is_used() -> None:
    reached, todo = set(), ["app.js"]  # index.html loads app.js; it loads the rest
    while todo:
        name = todo.pop()
        reached.add(name)
        for target in imports(name):
            assert target.startswith("./") and target.count("/") == 1, f"{name}: import {target!r}"
            assert (STATIC_DIR / target[2:]).is_file(), f"{name} imports {target}, which does not exist"
            if target[2:] not in reached:
                todo.append(target[2:])
    assert sorted(reached) == MODULES, "a module nothing imports"


@pytest.mark.parametrize("name", MODULES)
def test_each_module_is_served_as_javascript_under_the_csp(name: str) -> None:
    answer = client(forbidden()).get(f"/static/{name}", headers={"Host": "127.0.0.1:8765"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
    assert "script-src 'self'" in answer.headers["content-security-policy"]


@pytest.mark.parametrize("name", MODULES)
def test_no_module_parses_strings_as_html_or_code(name: str) -> None:
    # Server data goes in through textContent only (dom.js el()): never parsed as markup.
    # Comment lines are left out: they may name what the code avoids.
    lines = (STATIC_DIR / name).read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith(("//", "/*", "*")))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in text, f"{name} uses {sink}"


def test_every_static_file_ships_as_package_data() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["alecton"]
    package = STATIC_DIR.parents[1]  # .../alecton
    shipped = {path for pattern in patterns for path in package.glob(pattern)}  # as setuptools globs
    unshipped = [str(path) for path in STATIC_DIR.rglob("*") if path.is_file() and path not in shipped]
    assert unshipped == [], "add these to [tool.setuptools.package-data] in pyproject.toml"
