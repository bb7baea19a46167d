"""The reviewer console /review (being expanded): queue, application page, document viewer, decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from mailflow.models import StaffRole, StaffUser
from mailflow.web.pages import render
from mailflow.web.staff_auth import require_staff

router = APIRouter()

Reviewer = Annotated[StaffUser, Depends(require_staff(StaffRole.REVIEWER))]


@router.get("/review")
def queue(request: Request, staff: Reviewer) -> HTMLResponse:
    return render(request, "staff_login.html", next="", name="", error="")
