"""The package's shape: imports flow one way, with no cycle, counting imports inside functions.

Layers, lowest first (a module may import its own layer and those below):

    core  <-  assets, specs, io, datasets  <-  inference  <-  evaluation, apps, synth  <-  serve, scale  <-  cli
                 models (PyTorch)  <-  training, convert  <-  cli

Inference never imports the PyTorch side (models, training, convert).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "openheadpose"

LAYER = {
    "core": 0,
    "assets": 1, "specs": 1, "io": 1, "datasets": 2,
    "inference": 3,
    "evaluation": 4, "apps": 4, "synth": 4,
    "serve": 5, "scale": 5,
    "models": 3, "training": 5, "convert": 5,
    "cli": 6,
}
TORCH_SIDE = {"models", "training", "convert"}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        m = ".".join(p.relative_to(SRC).with_suffix("").parts)
        mods[m.removesuffix(".__init__")] = p
    return mods


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):  # every import, at any depth
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("openheadpose"):
                names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("openheadpose")]
            for n in names:
                t = resolve(n)
                if t and t != m and not m.startswith(t + "."):  # a package's own __init__ is its children's business
                    graph[m].add(t)
    return graph


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_no_import_cycles():
    graph = _imports(_modules())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_imports_flow_down_the_layers():
    graph = _imports(_modules())
    wrong = []
    for m, targets in graph.items():
        a = _part(m)
        for t in targets:
            b = _part(t)
            if a is None or b is None or a == b:
                continue
            if LAYER[b] > LAYER[a] or (a not in TORCH_SIDE | {"cli", "synth"} and b in TORCH_SIDE):
                wrong.append(f"{m} -> {t}")
    assert wrong == []


@pytest.mark.parametrize("package", sorted(LAYER))
def test_every_package_has_a_layer(package):
    assert (PKG / package).is_dir()
