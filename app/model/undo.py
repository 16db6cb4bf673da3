"""A command-pattern undo stack with macros (one undo step for many edits)."""
from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Protocol


class Command(Protocol):
    """One reversible edit. It records what it needs to undo itself when it is made.

    `merge_key`: commands with equal non-None keys may be merged by `merge` when they follow
    each other inside a macro (a propagation run makes thousands of edits per object).
    """

    text: str
    merge_key: Hashable | None

    def redo(self) -> None: ...

    def undo(self) -> None: ...

    def merge(self, later: Command) -> None: ...


class MacroCommand:
    """Commands done as one step; undone in reverse order."""

    merge_key = None

    def __init__(self, text: str):
        self.text = text
        self.commands: list[Command] = []
        self._open_by_key: dict[Hashable, Command] = {}

    def add(self, command: Command) -> None:
        key = command.merge_key
        if key is None:
            # A command that does not merge is a barrier: later edits must not move before it.
            self._open_by_key.clear()
            self.commands.append(command)
        elif key in self._open_by_key:
            self._open_by_key[key].merge(command)
        else:
            self._open_by_key[key] = command
            self.commands.append(command)

    def redo(self) -> None:
        for command in self.commands:
            command.redo()

    def undo(self) -> None:
        for command in reversed(self.commands):
            command.undo()

    def merge(self, later: Command) -> None:
        raise NotImplementedError("macros do not merge")


class UndoStack:
    """Done commands (undoable) and undone ones (redoable); a new edit drops the redoable ones.

    `limit`: keep at most this many undo steps (None: unlimited); the oldest are forgotten.
    """

    def __init__(self, limit: int | None = None):
        if limit is not None and limit < 1:
            raise ValueError(f"undo limit must be >= 1 or None, got {limit}")
        self.limit = limit
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self._macros: list[MacroCommand] = []  # open macros, outermost first

    def push(self, command: Command, step: MacroCommand | None = None) -> None:
        """Record `command` and do it; into `step` (from `open_step`) when given."""
        self._undone.clear()
        if step is not None:
            step.add(command)
        elif self._macros:
            self._macros[-1].add(command)
        else:
            self._record(command)
        command.redo()

    def open_step(self, text: str) -> MacroCommand:
        """A step filled over time through `push(..., step=)` (a propagation run) while other edits
        keep being their own steps; `close_step` records it, after them."""
        return MacroCommand(text)

    def close_step(self, step: MacroCommand) -> None:
        if step.commands:
            self._record(step)

    @contextmanager
    def macro(self, text: str) -> Iterator[MacroCommand]:
        """Group the edits made inside into one undo step named `text`.

        Nested macros join the outermost one. If the block raises, the edits made so far stay
        (as one undoable step) and the exception propagates: a cancelled propagation keeps its
        frames, and one undo removes them.
        """
        macro = MacroCommand(text)
        self._macros.append(macro)
        try:
            yield macro
        finally:
            self._macros.pop()
            if macro.commands:
                if self._macros:
                    for command in macro.commands:
                        self._macros[-1].add(command)
                else:
                    self._record(macro)

    def _record(self, command: Command) -> None:
        self._done.append(command)
        if self.limit is not None and len(self._done) > self.limit:
            del self._done[: len(self._done) - self.limit]

    def undo(self) -> bool:
        """Undo the last step; False when there is none."""
        self._check_no_macro("undo")
        if not self._done:
            return False
        command = self._done.pop()
        self._undone.append(command)
        command.undo()
        return True

    def redo(self) -> bool:
        """Redo the last undone step; False when there is none."""
        self._check_no_macro("redo")
        if not self._undone:
            return False
        command = self._undone.pop()
        self._done.append(command)
        command.redo()
        return True

    def clear(self) -> None:
        self._check_no_macro("clear the undo history")
        self._done.clear()
        self._undone.clear()

    def _check_no_macro(self, action: str) -> None:
        if self._macros:
            raise RuntimeError(f"cannot {action} while the macro {self._macros[0].text!r} is open")

    @property
    def can_undo(self) -> bool:
        return bool(self._done) and not self._macros

    @property
    def can_redo(self) -> bool:
        return bool(self._undone) and not self._macros

    @property
    def undo_text(self) -> str:
        return self._done[-1].text if self._done else ""

    @property
    def redo_text(self) -> str:
        return self._undone[-1].text if self._undone else ""

    def __len__(self) -> int:
        return len(self._done)
