"""A small inventory module: the Python file the explorer's tests read (nested blocks, strings, comments)."""

import json
from dataclasses import dataclass, field


@dataclass
class Item:
    name: str
    price: float
    tags: list[str] = field(default_factory=list)

    def label(self) -> str:
        if self.tags:
            return f"{self.name} ({', '.join(self.tags)})"
        return self.name


class Inventory:
    def __init__(self, items=None):
        self.items = {}
        for item in items or []:
            self.add(item)

    def add(self, item, count=1):
        # counts live next to the items, keyed by name
        if item.name in self.items:
            old, n = self.items[item.name]
            self.items[item.name] = (old, n + count)
        else:
            self.items[item.name] = (item, count)

    def remove(self, name, count=1):
        if name not in self.items:
            raise KeyError(f"no item named {name!r}")
        item, n = self.items[name]
        if n <= count:
            del self.items[name]
        else:
            self.items[name] = (item, n - count)

    def total(self):
        value = 0.0
        for item, n in self.items.values():
            value += item.price * n
        return round(value, 2)

    def by_tag(self):
        groups = {}
        for item, n in self.items.values():
            for tag in item.tags:
                if tag not in groups:
                    groups[tag] = []
                groups[tag].append((item.name, n))
        return groups

    def cheapest(self, k=3):
        ranked = sorted(self.items.values(), key=lambda pair: pair[0].price)
        return [item.name for item, _ in ranked[:k]]

    def save(self, path):
        rows = []
        for item, n in self.items.values():
            rows.append({"name": item.name, "price": item.price, "tags": item.tags, "count": n})
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)

    @classmethod
    def load(cls, path):
        inventory = cls()
        with open(path, encoding="utf-8") as f:
            for row in json.load(f):
                item = Item(row["name"], row["price"], row.get("tags", []))
                inventory.add(item, row.get("count", 1))
        return inventory


def restock(inventory, orders):
    """Apply (name, count) orders; unknown names are reported, not raised."""
    missing = []
    for name, count in orders:
        if name in inventory.items:
            item, _ = inventory.items[name]
            inventory.add(item, count)
        else:
            missing.append(name)
    return missing


def report(inventory):
    lines = []
    for tag, entries in sorted(inventory.by_tag().items()):
        lines.append(f"[{tag}]")
        for name, n in entries:
            if n > 1:
                lines.append(f"  {name} x{n}")
            else:
                lines.append(f"  {name}")
    lines.append(f"total: {inventory.total():.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    shop = Inventory([Item("apple", 0.5, ["fruit"]), Item("pear", 0.75, ["fruit"]), Item("saw", 12.0, ["tools"])])
    shop.add(Item("apple", 0.5, ["fruit"]), 4)
    print(report(shop))
