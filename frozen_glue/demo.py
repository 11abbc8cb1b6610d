"""`make demo`'s set-up: the tiny offline models and GLUE-format data under demo/ (built once, reused)."""

import sys
from pathlib import Path

from .tiny import build_demo


def main(root="demo"):
    root = Path(root)
    stamp = root / ".built"
    if stamp.exists():
        print(f"demo assets: {root} (already built)")
        return 0
    paths = build_demo(root)
    stamp.write_text("ok\n")
    for name, path in paths.items():
        print(f"demo {name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
