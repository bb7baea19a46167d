"""HTTP: the FastAPI app with one router per audience (applicants, reviewers, support, dev mailbox)."""
