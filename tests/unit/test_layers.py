"""The layers go one way: flows (handlers) -> services -> store. The store never imports a
service or a flow; a service never imports a flow. Only the application's assembly (bot.app)
and the entry points (bot.__main__, the sandbox) put the flows together with the rest."""

from tests.unit.test_import_cycles import imports, modules

ASSEMBLY = ("bot.app", "bot.__main__", "bot.sandbox")


def _graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def _layer(module: str) -> int | None:
    """0 store, 1 services, 2 flows; None for what stands beside them (config, telegram, web…)."""
    if module.startswith("bot.store"):
        return 0
    if module.startswith("bot.services"):
        return 1
    if module.startswith("flows"):
        return 2
    return None


def test_imports_go_from_flows_to_services_to_store_never_back() -> None:
    backwards = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in targets
        if (here := _layer(module)) is not None and (there := _layer(target)) is not None and there > here
    )
    assert backwards == []


def test_only_the_assembly_imports_the_flows() -> None:
    into_flows = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if not module.startswith(("flows", *ASSEMBLY))
        for target in targets
        if target.startswith("flows")
    )
    assert into_flows == []


def test_the_contract_sees_a_backward_import() -> None:
    assert (
        _layer("bot.store.models") == 0 and _layer("bot.services.outbox") == 1 and _layer("flows.intake") == 2
    )
