"""Placeholder until the app shell lands: show the engine's CLI help."""

import sys


def main() -> int:
    from engine.cli import build_parser

    build_parser().print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
