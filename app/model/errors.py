"""The one error type for malformed annotation and project files."""
from __future__ import annotations

import os


class FormatError(ValueError):
    """A file does not follow its documented format (docs/formats.md).

    `field` is the path of the bad value inside the document, e.g. `objects[1].frames["12"].box`,
    and `file` the file it came from; both appear in the message so users can find the mistake.
    """

    def __init__(self, message: str, field: str = "", file: str | os.PathLike | None = None):
        self.message = message
        self.field = field
        self.file = None if file is None else os.fspath(file)
        super().__init__(": ".join(part for part in (self.file, field, message) if part))

    def in_file(self, file: str | os.PathLike) -> FormatError:
        """The same error, now naming the file it was found in."""
        return FormatError(self.message, self.field, file)
