"""The way in: the zh-TW start page at / (申請一般帳號 / 申請共用帳號 / 登入 and what each is for), the
favicon, and the zh-TW answer for a page that does not exist (the JSON API answers {"error"} instead, see
app.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from mailflow.paths import STATIC_DIR
from mailflow.web.pages import render

router = APIRouter()

# Browsers ask for /favicon.ico on every site whether a page names an icon or not.
FAVICON = STATIC_DIR / "favicon.ico"
# Titles of the zh-TW error page by HTTP status; anything else reads as the generic one.
ERROR_TITLES = {400: "資料無法處理", 404: "找不到此頁面", 405: "無法以此方式開啟此頁面", 408: "傳送逾時",
                413: "資料太大", 415: "表單格式不正確", 422: "資料格式不正確"}
ERROR_MESSAGES = {404: "您要找的頁面不存在,可能是網址輸入錯誤,或頁面已移除。",
                  405: "此頁面不接受這種操作,請回到首頁重新開始。",
                  422: "網址或表單中有資料的格式不正確,請回到上一頁確認後再試一次。"}


@router.get("/")
def start_page(request: Request) -> Response:
    return render(request, "start.html")


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return FileResponse(FAVICON, media_type="image/vnd.microsoft.icon",
                        headers={"Cache-Control": "public, max-age=86400"})


def error_page(request: Request, status: int, detail: str = "") -> Response:
    """The zh-TW page for a refused or unknown page request (never JSON: the API has its own answer)."""
    message = ERROR_MESSAGES.get(status, "此要求無法處理,請回到首頁重新開始。")
    if detail and not detail.isascii():
        message = detail  # a zh-TW reason a route gave itself says more than the generic sentence
    return render(request, "error.html", status_code=status, title=ERROR_TITLES.get(status, "無法處理此要求"),
                  message=message, status=status)
