"""`rrg-desk` entry point: dispatches subcommands; with none, opens the workstation.

Heavy modules (torch, Qt) are imported only by the branch that needs them.
"""
from __future__ import annotations

import sys

SUBCOMMANDS = {
    "draft": ("rrg_desk.inference.cli", "Draft a report for a study from the command line."),
}

USAGE = """usage: rrg-desk [OPTIONS] [STUDY_PATH ...]      open the workstation (GUI)
       rrg-desk draft PATH [PATH ...] [--bundle DIR] [--device cpu|cuda] [--json OUT]
       rrg-desk draft --each PATH [PATH ...] --jsonl OUT.jsonl [--bundle DIR]   every image its own study
       rrg-desk --selftest [--study DIR] [--bundle DIR] [--keep DIR]   headless end-to-end check

Run `rrg-desk SUBCOMMAND --help` for a subcommand's options, `rrg-desk --help-gui` for the GUI's."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
        return int(module.main(argv[1:]) or 0)
    if argv and argv[0] == "--selftest":  # before Qt is imported: it sets the offscreen platform
        from rrg_desk.selftest import main as selftest_main

        return int(selftest_main(argv[1:]))
    if argv and argv[0] == "--help-gui":
        argv = ["--help"]
    from rrg_desk.ui.app import run_gui

    return int(run_gui(argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
