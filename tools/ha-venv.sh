#!/usr/bin/env bash
# The Home Assistant that `make test-ha` runs: a venv outside the repo, made once with
# Python 3.12 (pyenv's, else any python3.12 on PATH), holding homeassistant 2025.1.x and
# what it would pip-install itself at its first start (host_tests/ha/requirements.txt),
# so the test can run it with --skip-pip. Prints the venv's python on stdout; everything
# else goes to stderr. Exit 1, with what to do, when Python 3.12 cannot be found.
set -euo pipefail

HA_VERSION=2025.1.4
HA_HOME="${FARMNODE_HA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/farmnode/ha-${HA_VERSION%.*}}"
VENV="$HA_HOME/venv"
REQUIREMENTS="$(dirname "$0")/../host_tests/ha/requirements.txt"
# pip runs again when the requirements change: the marker holds what the venv was made from.
WANT="homeassistant==$HA_VERSION $(sed -e 's/#.*//' "$REQUIREMENTS" | tr -s ' \n' ' ')"
MARKER="$VENV/.farmnode-installed"

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT" ] && [ -x "$VENV/bin/python" ]; then
    echo "$VENV/bin/python"
    exit 0
fi

PY312="${FARMNODE_PY312:-}"
if [ -z "$PY312" ]; then
    # The first that runs: pyenv's shim on PATH may exist and still refuse to run.
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3.12 "$(command -v python3.12 || true)"; do
        if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
            PY312="$candidate"
            break
        fi
    done
fi
if [ -z "$PY312" ]; then
    cat >&2 <<'MSG'
make test-ha cannot run: Home Assistant 2025.1 needs Python 3.12, and none was found
(looked in $PYENV_ROOT/versions/3.12.*/bin and for python3.12 on PATH).
Install it, then run `make test-ha` again:
  pyenv:          pyenv install 3.12     (https://github.com/pyenv/pyenv#installation)
  Debian/Ubuntu:  sudo apt-get install python3.12 python3.12-venv
or point FARMNODE_PY312 at a python3.12.
MSG
    exit 1
fi

echo "installing Home Assistant $HA_VERSION into $VENV with $PY312 (once; a few minutes)" >&2
started=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then  # else only what changed is installed
    rm -rf "$VENV"
    "$PY312" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
fi
# The grep drops pip's warnings about package folders a pip.conf names but this machine
# lacks (one per package: hundreds of lines); everything else pip says is kept.
# shellcheck disable=SC2086  # WANT is a list of requirement specifiers
"$VENV/bin/python" -m pip install --quiet $WANT 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
echo "$WANT" > "$MARKER"
echo "Home Assistant $HA_VERSION installed in $(( $(date +%s) - started )) s" >&2
echo "$VENV/bin/python"
