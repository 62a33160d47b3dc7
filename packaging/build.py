"""Build the one-folder RRG Desk bundle (dist/rrg-desk/) with PyInstaller and report its figures.

    .venv/bin/python packaging/build.py [--bundle DIR | --random-bundle] [--no-strip] [--dist DIR]

The shipped model bundle is resources/models/default (the trained one). --random-bundle
builds with randomly initialised default-size models when no trained bundle exists yet (a
test build: the selftest passes, the drafts are nonsense). Prints build time and size; with
--selftest also runs the frozen `rrg-desk --selftest` in a clean environment.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "rrg_desk.spec"
APP_NAME = "rrg-desk"
RANDOM_BUNDLE = ROOT / "build" / "random-default-bundle"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--bundle", type=Path, help="model bundle to ship (default: resources/models/default)")
    choice.add_argument("--random-bundle", action="store_true",
                        help="if resources/models/default is missing, ship a random default-size bundle (test builds)")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller work folder")
    parser.add_argument("--no-strip", action="store_true", help="keep libtorch's symbol tables (~170 MB)")
    parser.add_argument("--selftest", action="store_true", help="run the frozen --selftest afterwards")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="with --selftest: the frozen selftest keeps the exports it checked in DIR")
    return parser.parse_args(argv)


def choose_bundle(args: argparse.Namespace) -> Path:
    if args.bundle is not None:
        return args.bundle.resolve()
    default = ROOT / "resources" / "models" / "default"
    if (default / "card.json").is_file():
        return default
    if not args.random_bundle:
        raise SystemExit(f"no trained model bundle at {default}; train it (python -m train all), pass "
                         "--bundle DIR, or --random-bundle for a test build with random weights")
    if not (RANDOM_BUNDLE / "card.json").is_file():
        from rrg_desk.models.bundle import build_random_bundle

        print(f"build.py: no trained bundle; writing a random default-size bundle to {RANDOM_BUNDLE}", flush=True)
        shutil.rmtree(RANDOM_BUNDLE, ignore_errors=True)
        build_random_bundle(RANDOM_BUNDLE, size="default")
    return RANDOM_BUNDLE


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def strip_torch_libraries(app_dir: Path) -> int:
    """Strip the symbol tables of torch's own libraries (shipped unstripped, ~20 % of their size).

    Only these: PyInstaller's blanket strip breaks auditwheel-patched libraries (numpy's
    OpenBLAS). `strip` keeps the dynamic symbols and the CUDA fat binaries (allocated
    sections), so the libraries still load and run. Returns the bytes saved."""
    saved = 0
    for library in sorted((app_dir / "_internal" / "torch" / "lib").glob("lib*.so*")):
        if library.is_symlink() or not library.is_file():
            continue
        before = library.stat().st_size
        subprocess.run(["strip", "--strip-unneeded", str(library)], check=True)
        saved += before - library.stat().st_size
    return saved


def clean_env(home: Path) -> dict[str, str]:
    """What a fresh login has: no virtualenv, no PYTHONPATH, no display (env -i HOME PATH LANG)."""
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def run_frozen_selftest(app_dir: Path, timeout: float = 900,
                        keep: Path | None = None) -> tuple[subprocess.CompletedProcess, float]:
    keep_args = ["--keep", str(keep.resolve())] if keep is not None else []
    with tempfile.TemporaryDirectory(prefix="rrg-desk-clean-home-") as home:
        started = time.perf_counter()
        proc = subprocess.run([str(app_dir / APP_NAME), "--selftest", *keep_args], cwd=home, env=clean_env(Path(home)),
                              capture_output=True, text=True, timeout=timeout)
        return proc, time.perf_counter() - started


def build(args: argparse.Namespace) -> Path:
    bundle = choose_bundle(args)
    subprocess.run([sys.executable, str(PACKAGING / "make_icon.py")], check=True)
    env = dict(os.environ, RRG_DESK_PACKAGE_BUNDLE=str(bundle))
    env.pop("PYTHONPATH", None)
    command = [sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm", "--clean", "--log-level", "WARN",
               "--distpath", str(args.dist), "--workpath", str(args.work)]
    print(f"build.py: {' '.join(command)}\nbuild.py: shipping model bundle {bundle}", flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env=env)
    app_dir = args.dist / APP_NAME
    if not args.no_strip:
        saved = strip_torch_libraries(app_dir)
        print(f"build.py: stripped libtorch symbol tables: {saved / 2**20:.0f} MiB less", flush=True)
    shutil.copy2(PACKAGING / "rrg-desk.desktop", app_dir / "rrg-desk.desktop")
    shutil.copy2(PACKAGING / "install.sh", app_dir / "install.sh")
    elapsed = time.perf_counter() - started
    print(f"build.py: built {app_dir} in {elapsed / 60:.1f} min; size {folder_size(app_dir) / 2**30:.2f} GiB",
          flush=True)
    return app_dir


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app_dir = build(args)
    if args.selftest:
        proc, seconds = run_frozen_selftest(app_dir, keep=args.keep)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        print(f"build.py: frozen selftest exit {proc.returncode} in {seconds:.1f} s (clean environment)")
        return proc.returncode
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # build_random_bundle, when run as a script
    sys.exit(main())
