"""Applicants' accounts: registration rules, review, verification tokens, shared accounts, login."""
