#!/usr/bin/env bash
# Regenerates the initial migration from the models (allowed until the first release ships).
set -euo pipefail
cd "$(dirname "$0")/.."
if ls mailflow/migrations/versions/ | grep -v '^0001_initial.py$' | grep -q '\.py$'; then
    echo "later revisions exist: add a revision of your own instead (docs/ARCHITECTURE.md, Schema changes)" >&2
    exit 1
fi
tmp=$(mktemp -d)
rm -f mailflow/migrations/versions/0001_initial.py
python - "$tmp" <<'PY'
import sys
from alembic import command
from mailflow.db import alembic_config
cfg = alembic_config(f"sqlite:///{sys.argv[1]}/regen.db")
command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
PY
mv mailflow/migrations/versions/0001_initial_schema.py mailflow/migrations/versions/0001_initial.py
ruff check --fix --quiet mailflow/migrations/versions/0001_initial.py >/dev/null 2>&1 || true
ruff format mailflow/migrations/versions/0001_initial.py >/dev/null 2>&1 || true
rm -rf "$tmp"
echo "regenerated mailflow/migrations/versions/0001_initial.py"
