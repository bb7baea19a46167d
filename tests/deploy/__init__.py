"""Tests of docs/DEPLOY.md against real peers (a throw-away Postfix instance)."""
