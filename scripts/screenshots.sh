#!/usr/bin/env bash
# Refreshes docs/screenshots/*.png: runs the real-browser tests (Debian's chromium) with
# MAILFLOW_SCREENSHOTS=docs, which makes them save the chosen steps there as well as under
# test-artifacts/browser/. Usage: bash scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The pages are zh-TW: without a CJK font chromium draws empty boxes. One small font is enough.
if ! fc-list :lang=zh-tw 2>/dev/null | grep -q .; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null
    else
        echo "screenshots: no Chinese font found; install one first (apt-get install fonts-wqy-microhei)" >&2
        exit 1
    fi
fi

rm -f docs/screenshots/*.png
MAILFLOW_SCREENSHOTS=docs python -m pytest -q -p no:cacheprovider \
    tests/browser/test_seed_story.py::test_the_seed_story_in_a_browser \
    tests/browser/test_a11y_mobile.py::test_every_page_fits_a_phone_and_names_its_fields \
    "tests/browser/test_account_binding.py::test_a_shared_account_asks_for_a_binding_and_cancels_it[360]" \
    "tests/browser/test_password_reset.py::test_a_forgotten_password_is_reset_from_the_login_page[360]" \
    "tests/browser/test_mail_rendering.py::test_every_mail_reads_well_in_a_mail_app_and_in_webmail[account-approved]"
ls -l docs/screenshots/
