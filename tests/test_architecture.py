"""course_lib's architecture holds: imports point down the layers, never from inside a function, no cycles."""

from course_lib.core.imports import LAYERS, course_imports, import_cycles, layer_violations, module_files, package_of


def test_every_subpackage_has_a_layer() -> None:
    packages = {package_of(name) for name in module_files()} - {""}
    assert packages == {package for layer in LAYERS for package in layer}


def test_imports_only_point_down_the_layers_and_sit_at_module_level() -> None:
    problems = layer_violations(course_imports())
    assert not problems, "\n".join(problems)


def test_the_import_graph_has_no_cycle() -> None:
    assert import_cycles(course_imports()) == []
