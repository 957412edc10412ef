#!/bin/sh
# Redraw the architecture pictures from their text sources (Debian: graphviz).
set -e
cd "$(dirname "$0")"
command -v dot >/dev/null 2>&1 || { echo "render.sh: needs graphviz's dot (apt-get install graphviz)" >&2; exit 1; }
for g in architecture task-life; do
  dot -Tsvg "$g.dot" -o "$g.svg"
  dot -Tpng -Gdpi=110 "$g.dot" -o "$g.png"
done
