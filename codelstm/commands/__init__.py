"""One module per `codelstm` subcommand: argument definitions plus a thin handler over the library."""


class UserError(Exception):
    """An error caused by the user's input: printed as one line, no traceback, exit code 2."""
