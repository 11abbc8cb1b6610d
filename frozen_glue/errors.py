"""One exception type for every bad input, and the one wrapper every entry point runs under (run_glue_frozen.py,
the sweep, analysis/, bench/, the demo). Must not import anything heavy: analysis scripts load it first."""

import argparse
import sys


class UserError(Exception):
    """A problem with the user's input. The message says what is wrong and how to fix it."""

    exit_code = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line (a UserError), not a usage block."""

    def error(self, message):
        raise UserError(f"{message}; see {self.prog} --help")


def run_cli(main, argv=None) -> int:
    """Run an entry point: a UserError is one line on stderr and exit code 2; anything else is a crash (a
    traceback, exit code 1). Returns the exit code."""
    try:
        return main(argv) or 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return e.exit_code
