"""A key's cap on calls in flight, across replicas: slots claimed in the database and
reused in memory. Pure.

A replica claims a slot of the key's cap (one statement) when all those it holds are busy,
and keeps it while calls keep coming; a slot idle for a while goes back, and a replica that
dies loses its claims when they expire. Slots are claimed before they are used, so the
replicas together never have more calls in flight than the cap; a slot one replica holds
idle can refuse a call on another until it goes back.
"""

from dataclasses import dataclass


@dataclass
class Slots:
    held: int = 0  # claimed in the database
    busy: int = 0  # calls in flight
    idle_since: float = 0.0


class SlotBook:
    def __init__(self) -> None:
        self.keys: dict[int, Slots] = {}

    def take(self, key_id: int) -> bool:
        """A held slot is free: the call takes it. False: claim another first."""
        slots = self.keys.setdefault(key_id, Slots())
        if slots.busy < slots.held:
            slots.busy += 1
            return True
        return False

    def claimed(self, key_id: int) -> None:
        """A slot was claimed for a call, which takes it."""
        slots = self.keys[key_id]
        slots.held += 1
        slots.busy += 1

    def end(self, key_id: int, now: float) -> None:
        slots = self.keys[key_id]
        slots.busy -= 1
        slots.idle_since = now

    def surplus(self, now: float, idle_seconds: float) -> list[tuple[int, int]]:
        """(key, slots) held but unused for `idle_seconds`: to give back; they leave the book."""
        done = []
        for key_id, slots in self.keys.items():
            if slots.held > slots.busy and now - slots.idle_since >= idle_seconds:
                done.append((key_id, slots.held - slots.busy))
                slots.held = slots.busy
        return done

    def holding(self) -> bool:
        return any(slots.held for slots in self.keys.values())
