"""Deployment order: a deterministic topological sort of the resource graph, and cycles named for the user.

Nodes are plain indices (the expander's resource instances in template order); ``edges[i]`` holds the nodes
``i`` depends on. Among the nodes that are ready at any step the one earliest in the template goes first, so the
same template always gives the same order and an order that reads like the template.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence


def topological_order(count: int, edges: Sequence[Iterable[int]]) -> tuple[list[int], list[int]]:
    """Return ``(order, cycle)``: every node dependencies-first, or, when the graph has a cycle, the nodes
    sorted so far and one cycle (as a closed walk ``[a, b, ..., a]``)."""
    deps: list[set[int]] = [set(e) - {i} for i, e in enumerate(edges)]
    dependents: list[list[int]] = [[] for _ in range(count)]
    remaining = [0] * count
    for node, node_deps in enumerate(deps):
        remaining[node] = len(node_deps)
        for d in node_deps:
            dependents[d].append(node)
    ready = [i for i in range(count) if remaining[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for dependent in dependents[node]:
            remaining[dependent] -= 1
            if remaining[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(order) == count:
        return order, []
    done = set(order)
    return order, find_cycle([i for i in range(count) if i not in done], deps)


def find_cycle(candidates: list[int], deps: Sequence[set[int]]) -> list[int]:
    """One cycle among ``candidates`` (nodes left over by the sort): follow unsorted dependencies until a node
    repeats. Every left-over node has at least one left-over dependency, so the walk always closes."""
    pending = set(candidates)
    start = min(candidates)
    walk: list[int] = []
    seen: dict[int, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(walk)
        walk.append(node)
        node = min(d for d in deps[node] if d in pending)
    return [*walk[seen[node] :], node]
