#!/usr/bin/env bash
# Kept for old instructions: the catalogue benchmark is part of bench/run.sh, which also
# measures the nginx anchor, orders and callbacks in the same run.
exec "$(dirname "$0")/run.sh" "$@"
