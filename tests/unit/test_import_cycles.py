"""No import cycle in bot/ (nor between bot/ and flows/): a module may import another at the top
or inside a function, but never one that imports it back. Imports under `if TYPE_CHECKING:` are
types only and do not count."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def modules() -> dict[str, Path]:
    found = {}
    for package in ("bot", "flows"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project's modules that `name` imports, at any depth but outside TYPE_CHECKING blocks."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base, *(f"{base}.{alias.name}" for alias in child.names)]
            for target in targets:
                module = owner(target)
                # A package's own submodules and its parents are not cycles (`bot` -> `bot.x` -> `bot`).
                if (
                    module
                    and module != name
                    and not name.startswith(module + ".")
                    and not module.startswith(name + ".")
                ):
                    found.add(module)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def strong(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                strong(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            strong(node)
    return found


def test_the_detector_finds_a_lazy_cycle() -> None:
    assert cycles({"bot.a": {"bot.b"}, "bot.b": {"bot.a"}, "bot.c": {"bot.a"}}) == [["bot.a", "bot.b"]]


def test_no_import_cycle_in_bot() -> None:
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert graph["bot.sandbox.control"] >= {"bot.sandbox.emulator"}  # the walk sees imports at all
    assert cycles(graph) == []
