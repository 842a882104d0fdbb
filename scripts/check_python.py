"""Check the Python that `make` uses, and repair a .venv that another Python built.

Run by the Makefile with the interpreter it is about to use, before anything is installed:

    python3 scripts/check_python.py            # is this interpreter new enough?
    python3 scripts/check_python.py --venv .venv   # does .venv still run a new enough Python?

Each problem is one line on stderr. A too-old interpreter exits 1 and says how to pick
another; a .venv whose Python no longer runs (removed, upgraded) or is too old is deleted,
so that `make` builds it again with the interpreter given. Written for old interpreters
too (no syntax newer than Python 3.6), since it must run on the Python it refuses.
"""

import os
import shutil
import subprocess
import sys

#: The oldest Python lro-server supports (pyproject.toml: requires-python).
MINIMUM = (3, 11)


def _text(version):
    return ".".join(str(part) for part in version)


def interpreter_problem(version, executable):
    """The one-line complaint about ``executable`` at ``version``, or None when fine."""
    if tuple(version[:2]) >= MINIMUM:
        return None
    need, have = _text(MINIMUM), _text(version[:3])
    return (
        f"needs Python {need} or newer, and {executable} is Python {have}: install "
        f"Python {need}+ and run make with it, e.g. make run PYTHON=python{need}"
    )


def venv_version(venv):
    """(major, minor) of the Python in ``venv``, or None when it does not run."""
    python = os.path.join(venv, "bin", "python")
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=True,
        ).stdout
        major, minor = out.decode().split()
        return int(major), int(minor)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def built_by(venv):
    """The version pyvenv.cfg says built ``venv`` ("" when it does not say)."""
    try:
        with open(os.path.join(venv, "pyvenv.cfg")) as config:
            for line in config:
                key, _, value = line.partition("=")
                if key.strip() in ("version", "version_info"):
                    return value.strip()
    except OSError:
        pass
    return ""


def venv_problem(venv, version):
    """Why ``venv`` must be rebuilt (with an interpreter at ``version``), or None."""
    if not os.path.isdir(venv):
        return None
    running = venv_version(venv)
    if running is not None and running >= MINIMUM:
        return None
    origin = built_by(venv) or "an unknown Python"
    why = "which no longer runs" if running is None else "which is too old"
    now = _text(version[:3])
    return f"{venv} was built by Python {origin}, {why}: rebuilding it with Python {now}"


def main(argv):
    """With --venv VENV: repair VENV (always exit 0; the interpreter is judged when it is
    about to build). Without: exit status 1 when this interpreter is too old."""
    if len(argv) == 2 and argv[0] == "--venv":
        problem = venv_problem(argv[1], sys.version_info)
        if problem:
            sys.stderr.write("lro-server: " + problem + "\n")
            shutil.rmtree(argv[1])
        return 0
    problem = interpreter_problem(sys.version_info, sys.executable)
    if problem:
        sys.stderr.write("lro-server: " + problem + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
