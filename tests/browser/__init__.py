"""Real-browser tests: the pages tried as a person would (Debian's chromium driven by Playwright)."""
