#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine and runs the suite on SQLite (the embedded
# default), then the tests that reach a database once more on PostgreSQL (127.0.0.1:5432, trust auth):
# tests/conftest.py finds them from their fixtures and deselects the database-free rest on PostgreSQL.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

# fonts-wqy-microhei: the pages and mails are zh-TW; without a CJK font chromium lays them out with
# empty boxes, and the browser tests would measure widths a person never sees.
# dovecot-lmtpd: the bounce lab's full mailbox (tests/inbound/lab) is Dovecot LMTP with a quota.
APT_PACKAGES=(dovecot-imapd dovecot-lmtpd chromium fonts-wqy-microhei wrk postfix haproxy)
need=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing Debian packages: ${need[*]}"
    apt-get update -qq
    # Postfix would ask what kind of mail system this is and start one on port 25: the tests run
    # their own instances (tests/deploy/postfix.py), so the system one stays unconfigured.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "== missing Debian packages (run as root to install): ${need[*]}" >&2
  fi
fi

# The bounce lab's other MTAs (Exim, OpenSMTPD, Sendmail) conflict with Postfix as installed MTAs: they
# are unpacked from their Debian packages into a cache instead (scripts/lab_mtas.sh).
if [ "$(id -u)" = 0 ]; then
  bash scripts/lab_mtas.sh
else
  echo "== not root: the bounce lab's MTAs are not unpacked, its tests will skip" >&2
fi

if command -v pg_ctlcluster >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "== starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

echo "== installing mailflow with its test extras"
python3 -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v -E "WARNING: Running pip as the 'root'|notice" || true

# Two processes (pytest-xdist) on the machine's two cores; --dist loadfile keeps each file's tests on one of
# them, so a file's module fixtures (one chromium per browser file, the bounce lab) start once. Every test
# already has its own database, folders and free ports; MAILFLOW_TEST_WORKERS=0 runs in one process.
PARALLEL=(-n "${MAILFLOW_TEST_WORKERS:-2}" --dist loadfile)

echo "== tests on SQLite"
if [ "$#" -eq 0 ]; then
  # The browser tests alone, in one process: beside a second busy test process chromium missed its
  # 30 s waits (a file dialog, a confirm dialog) in two CI runs, never when it had a core to itself.
  python3 -m pytest -q -rs -p no:cacheprovider "${PARALLEL[@]}" --db=sqlite --ignore=tests/browser
  echo "== browser tests on SQLite (one process)"
  python3 -m pytest -q -rs -p no:cacheprovider --db=sqlite tests/browser
else
  python3 -m pytest -q -rs -p no:cacheprovider "${PARALLEL[@]}" --db=sqlite "$@"
fi
echo "== tests on PostgreSQL (those that reach a database)"
# CI=true makes the PostgreSQL fixtures fail instead of skip when the server does not answer.
# Exit 5 (nothing selected) only when the arguments name database-free tests alone.
python3 -m pytest -q -rs -p no:cacheprovider "${PARALLEL[@]}" --db=postgresql "$@" || [ $? -eq 5 ]
if [ "$#" -eq 0 ]; then
  # The mails once more through the stdlib's build_message instead of the direct writer, and the /verify
  # page's token read through the ORM, inbound mails through the stdlib's MIME parser (mailflow/reference.py
  # says why and when to switch a server to it): the mail and outbox tests, the /verify tests, the stories
  # and the bounce corpus, on SQLite.
  echo "== mail, /verify and bounce tests through the reference paths"
  python3 -m pytest -q -rs -p no:cacheprovider "${PARALLEL[@]}" --db=sqlite --reference-paths tests/mail \
    tests/test_story.py tests/web/test_verify.py tests/web/test_verify_moved.py tests/web/test_token_reads.py \
    tests/inbound/test_bounce_corpus.py tests/inbound/test_bounce_flufl.py \
    --deselect tests/mail/test_wire.py --deselect tests/mail/test_daemon.py
fi
