"""What a rule declares and the narrow view it reads the inventory through."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Iterable, Iterator, List, Set, Tuple

from ..model import Finding, Input, Inventory, Listener, Mitigation, Placement


@dataclass(frozen=True)
class Settings:
    """Analysis settings, handed to each rule as an argument."""



@dataclass(frozen=True)
class Metadata:
    name: str
    description: str
    inputs: FrozenSet[Input]  # required: the rule is skipped without them
    optional: FrozenSet[Input] = frozenset()  # read when present; findings say when absent


@dataclass(frozen=True)
class Rule:
    meta: Metadata
    analyze: Callable[["InventoryView", Settings], Iterable[Finding]]


class InventoryView:
    """Read-only access that records which inputs a rule touched (checked by the tests)."""

    def __init__(self, inventory: Inventory) -> None:
        self._inv = inventory
        self.touched: Set[Input] = set()
        self._by_listener: Dict[Listener, List[Placement]] = defaultdict(list)
        for p in inventory.placements:
            self._by_listener[p.listener].append(p)

    def has(self, what: Input) -> bool:
        return what in self._inv.available

    def listeners(self) -> Iterator[Tuple[Listener, List[Placement]]]:
        """Placements per listener, in istiod's server order; listeners sorted."""
        self.touched.update((Input.GATEWAYS, Input.WORKLOADS))
        for listener in sorted(self._by_listener):
            yield listener, self._by_listener[listener]

    def placements(self) -> Iterator[Placement]:
        self.touched.update((Input.GATEWAYS, Input.WORKLOADS))
        return iter(self._inv.placements)

    def certificates_of(self, p: Placement) -> Placement:
        """Marks certificate contents as read; returns the placement for chaining."""
        self.touched.add(Input.CERTIFICATES)
        return p

    def mitigations(self) -> Tuple[Mitigation, ...]:
        self.touched.add(Input.ENVOY_FILTERS)
        return self._inv.mitigations

    def routes_of(self, p: Placement) -> Placement:
        self.touched.add(Input.VIRTUAL_SERVICES)
        return p
