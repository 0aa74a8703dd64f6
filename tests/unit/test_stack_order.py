"""Services start after what they depend on; a dependency cycle is refused with its path."""

from __future__ import annotations

import pytest

from scripts.stacklib import order, rendered
from tests.conftest import REPO


def test_a_stack_starts_its_backends_together_then_the_service_that_calls_them() -> None:
    stack = rendered.read(REPO / "tests" / "stackfixture" / "compose.yaml", {})
    graph = {name: [d.service for d in s.depends_on] for name, s in stack.services.items()}
    # Within a layer, Compose's order (its rendering sorts the services by name).
    assert order.layers(graph) == [["adder", "greeter"], ["front"], ["prometheus"]]


def test_services_with_no_order_between_them_keep_the_file_order() -> None:
    assert order.startup_order({"c": [], "a": [], "b": []}) == ["c", "a", "b"]


def test_a_chain_starts_from_its_end() -> None:
    graph = {"web": ["api"], "api": ["db", "cache"], "cache": ["db"], "db": []}
    assert order.layers(graph) == [["db"], ["cache"], ["api"], ["web"]]


def test_dependencies_outside_the_graph_are_left_to_the_caller() -> None:
    assert order.layers({"gateway": ["prometheus"], "hello": []}) == [["gateway", "hello"]]


def test_a_cycle_is_refused_with_its_path() -> None:
    with pytest.raises(order.CycleError, match=r"dependency cycle: a -> b -> a; break it"):
        order.layers({"a": ["b"], "b": ["a"], "c": []})


def test_a_longer_cycle_behind_a_waiting_service_is_found() -> None:
    with pytest.raises(order.CycleError) as caught:
        order.layers({"top": ["x"], "x": ["y"], "y": ["z"], "z": ["x"]})
    assert "x -> y -> z -> x" in str(caught.value)


def test_a_service_that_depends_on_itself_is_refused() -> None:
    with pytest.raises(order.CycleError, match=r"a -> a"):
        order.layers({"a": ["a"]})


def test_an_empty_graph_has_no_layers() -> None:
    assert order.layers({}) == []
