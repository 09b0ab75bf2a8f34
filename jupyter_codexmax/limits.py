"""Bounds that hold for values from outside (a model's arguments, a notebook's JSON)."""

from __future__ import annotations

from typing import Any

__all__ = ["depth_of"]


def depth_of(value: Any, stop: int = 10_000) -> int:
    """How deep ``value`` nests in dicts and lists (a scalar is 0, ``[]`` is 1), found
    without recursion; counting stops past ``stop``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > stop:
                return deepest
        stack.extend((child, depth) for child in children)
    return deepest
