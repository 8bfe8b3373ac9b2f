"""The deployment order's graph algorithm on its own: deterministic, dependencies first, cycles as closed walks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from arm_engine.graph import topological_order


def test_ready_nodes_go_in_template_order() -> None:
    order, cycle = topological_order(4, [{3}, set(), set(), set()])
    assert (order, cycle) == ([1, 2, 3, 0], [])


def test_cycle_is_a_closed_walk_of_the_cycle_only() -> None:
    order, cycle = topological_order(5, [set(), {3}, {1}, {2}, {1}])
    assert order == [0]
    assert cycle[0] == cycle[-1] and set(cycle) == {1, 2, 3}


def test_self_dependency_is_ignored() -> None:
    assert topological_order(2, [{0}, {0}]) == ([0, 1], [])


@given(
    st.integers(1, 30).flatmap(lambda n: st.lists(st.sets(st.integers(0, n - 1), max_size=3), min_size=n, max_size=n))
)
def test_every_node_after_its_dependencies_or_a_real_cycle(edges: list[set[int]]) -> None:
    order, cycle = topological_order(len(edges), edges)
    position = {node: i for i, node in enumerate(order)}
    if not cycle:
        assert sorted(order) == list(range(len(edges)))
        assert all(position[d] < position[n] for n, deps in enumerate(edges) for d in deps if d != n)
    else:
        assert cycle[0] == cycle[-1]
        assert all(cycle[i + 1] in edges[cycle[i]] for i in range(len(cycle) - 1))
