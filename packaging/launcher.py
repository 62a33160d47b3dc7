"""PyInstaller entry script of the frozen RRG Desk: the same dispatch as `python -m rrg_desk`.

The models run in a child process (multiprocessing, spawn: rrg_desk.inference.process). A frozen
app has no interpreter to spawn, so the child is this executable again with
`--multiprocessing-fork` arguments: freeze_support() (PyInstaller's, for every platform) turns
that run into the child and never returns; it comes before any other import.
"""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from rrg_desk.cli import main

    sys.exit(main())
