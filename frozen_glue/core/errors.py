"""Entry-point plumbing: one exception type for every bad input, the one wrapper every entry point runs under
(run_glue_frozen.py, the sweep, analysis/, bench/, the demo), and the console log that carries progress and facts.
Must not import anything heavy: analysis scripts load it first."""

import argparse
import errno
import logging
import sys

_CANNOT_WRITE = {errno.EACCES, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EPERM}


class UserError(Exception):
    """A problem with the user's input. The message says what is wrong and how to fix it."""

    exit_code = 2


class OneLineErrors:
    """The one parser error hook, mixed into every parser (ArgumentParser below, arguments.Parser): an argparse error
    is one line (a UserError naming the command's --help) instead of a usage block and exit."""

    command = None  # how a user runs the parser's command, for the hint; None: the parser's prog

    def __init__(self, *args, **kwargs):
        # argparse takes a prefix of a flag as the flag (--max_train 50 runs as --max_train_samples): a typo or a
        # flag of another tool would then be read silently as one of ours
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def usage_error(self, message) -> UserError:
        return UserError(f"{message}; see {self.command or self.prog} --help")

    def error(self, message):
        raise self.usage_error(message)


class ArgumentParser(OneLineErrors, argparse.ArgumentParser):
    """argparse whose errors are one line (a UserError), not a usage block."""


class _Console(logging.Handler):
    """Progress and facts on stdout (stderr is for what went wrong): plain lines, warnings as 'warning: ...'.
    sys.stdout is looked up at each record, so a redirected stdout (pytest's capture) is honoured."""

    def emit(self, record):
        try:
            text = record.getMessage()
            sys.stdout.write(("warning: " if record.levelno >= logging.WARNING else "") + text + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)


def setup_logging(level=logging.INFO):
    """The package's log ('frozen_glue' and its children) goes to the console at `level`."""
    log = logging.getLogger("frozen_glue")
    if not any(isinstance(h, _Console) for h in log.handlers):
        log.addHandler(_Console())
    log.setLevel(level)
    log.propagate = False


def run_cli(main, argv=None) -> int:
    """Run an entry point: a UserError is one line on stderr and exit code 2; anything else is a crash (a
    traceback, exit code 1). Returns the exit code."""
    setup_logging()
    try:
        return main(argv) or 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    except OSError as e:  # a place that cannot be written after the start-up checks passed (a full or read-only disk)
        if e.errno not in _CANNOT_WRITE:
            raise
        print(f"error: cannot write {e.filename or 'an output'}: {e.strerror}; free space or give a writable folder",
              file=sys.stderr, flush=True)
        return UserError.exit_code
