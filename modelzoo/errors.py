"""Errors a user can act on: one line naming the file, the field and what was expected."""

# Exit codes of the CLI (documented in README.md).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3  # a batch where some inputs failed and the rest were written


class ZooError(Exception):
    """An error whose message is shown to the user as it is, without a traceback."""


class ValidationError(ZooError):
    """A document that does not match its schema; `errors` holds one line per problem."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))
