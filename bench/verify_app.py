"""The mailflow web app for bench/verify.py's uvicorn (settings from the MAILFLOW_* environment)."""

from fastapi import FastAPI

from mailflow.config import load_settings
from mailflow.context import AppContext
from mailflow.web.app import create_app


def create() -> FastAPI:
    return create_app(AppContext.from_settings(load_settings()))
