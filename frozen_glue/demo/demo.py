"""`make demo`'s set-up: the tiny offline models and GLUE-format data under demo/ (built once, reused).
Must not run the study itself (the Makefile runs the sweep and the report)."""

import logging
import sys
from pathlib import Path

from frozen_glue.core.errors import ArgumentParser, run_cli
from frozen_glue.demo.tiny import build_demo

# named, not __name__: run as `python -m frozen_glue.demo.demo` this module is __main__
logger = logging.getLogger("frozen_glue.demo.demo")


def build(argv):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("root", nargs="?", default="demo", help="where the demo's models and data go (default: demo)")
    root = Path(parser.parse_args(argv).root)
    stamp = root / ".built"
    if stamp.exists():
        logger.info(f"demo assets: {root} (already built)")
        return 0
    paths = build_demo(root, contrast=True)
    stamp.write_text("ok\n")
    for name, path in paths.items():
        logger.info(f"demo {name}: {path}")
    return 0


def main(argv=None) -> int:
    return run_cli(build, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
