"""The one error type for event files that cannot be read as their format."""


class EventFileError(ValueError):
    """An event file that cannot be read as its format; the message names the file (and byte offset)."""
