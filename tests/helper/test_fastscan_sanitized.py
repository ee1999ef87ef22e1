"""The compiled scan under AddressSanitizer and UndefinedBehaviorSanitizer.

The differential tests run again in a child Python that loads an instrumented build of
_fastscan.c: any out-of-bounds read, use after free or undefined behaviour on hostile log
bytes aborts the child and fails this test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "helper" / "plex_security_helper" / "logwatch" / "_fastscan.c"
RUNNER = r"""
import importlib.machinery, importlib.util, sys
name = "plex_security_helper.logwatch._fastscan"
loader = importlib.machinery.ExtensionFileLoader(name, sys.argv[1])
spec = importlib.util.spec_from_file_location(name, sys.argv[1], loader=loader)
module = importlib.util.module_from_spec(spec)
loader.exec_module(module)
sys.modules[name] = module
import pytest
from plex_security_helper.logwatch import scan
assert scan._fastscan is module

def line_by_line(scanner, handle):
    # Each line its own exact-size allocation: a read past a line's end leaves the block.
    *lines, last = handle.read().split(b"\n")
    for line in lines:
        scanner.feed(bytes(line + b"\n"))
    scanner.feed(bytes(last), True)

scan._feed_file = line_by_line
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:randomly", sys.argv[2]]))
"""


def _runtime(name: str) -> str | None:
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    found = subprocess.run([gcc, f"-print-file-name={name}"], capture_output=True, text=True, check=True).stdout.strip()
    return found if os.path.isabs(found) else None


def test_differential_suite_under_sanitizers(tmp_path: Path) -> None:
    asan, ubsan = _runtime("libasan.so"), _runtime("libubsan.so")
    if asan is None or ubsan is None:
        pytest.skip("gcc with the sanitizer runtimes is not installed")
    built = tmp_path / "_fastscan_sanitized.so"
    subprocess.run(
        [
            "gcc",
            "-O1",
            "-g",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
            "-shared",
            "-fPIC",
            f"-I{sysconfig.get_paths()['include']}",
            str(SOURCE),
            "-o",
            str(built),
        ],
        check=True,
    )
    env = {
        **os.environ,
        "LD_PRELOAD": f"{asan} {ubsan}",
        # Python itself keeps memory until exit: leaks are not what this looks for.
        # Reports go to files: the child's pytest captures stderr and an abort would lose it.
        "ASAN_OPTIONS": f"detect_leaks=0:abort_on_error=1:log_path={tmp_path / 'asan'}",
        "UBSAN_OPTIONS": f"halt_on_error=1:print_stacktrace=1:log_path={tmp_path / 'ubsan'}",
        "PLEXSEC_FASTSCAN_EXAMPLES": "600",
        "PYTHONMALLOC": "malloc",  # every object its own malloc block, which ASan watches
    }
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(built), str(ROOT / "tests" / "helper" / "test_fastscan.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    reports = "".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("*san.*")))
    assert done.returncode == 0, (reports or done.stderr)[:4000] + done.stdout[-2000:]
    assert not reports
    assert " passed" in done.stdout
