"""One exception type for every bad input: the CLI prints its message as one line and exits non-zero."""


class UserError(Exception):
    """A problem with the user's input. The message says what is wrong and how to fix it."""

    exit_code = 2
