"""Errors that mean "the user asked for something that cannot work", with the fix in the message."""


class UsageError(ValueError):
    """A flag value or run directory that cannot be used; train.py prints it and exits 2."""
