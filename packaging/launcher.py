"""PyInstaller entry script of the frozen RRG Desk: the same dispatch as `python -m rrg_desk`."""
import sys

from rrg_desk.cli import main

if __name__ == "__main__":
    sys.exit(main())
