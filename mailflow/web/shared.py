"""(placeholder: this router is being written)"""

from fastapi import APIRouter

router = APIRouter()
