"""`mailflow inbound import PATH`: .eml, mbox, Maildir and folders of files, each mail stored then routed."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from mailflow.cli import main
from mailflow.context import AppContext
from mailflow.inbound.importer import ImportError_, import_path
from mailflow.models import InboundStatus, SupportKind
from mailflow.support.items import AUTOREPLY
from tests.factories import add_applicant
from tests.inbound.test_intake_helpers import (
    autoreply,
    dsn,
    inbound_rows,
    items,
    reply,
    sent_mail,
    suppressed,
)


def test_import_one_eml_twice_records_it_once(ctx: AppContext, tmp_path: Path) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    eml = tmp_path / "bounce.eml"
    eml.write_bytes(dsn(ctx.settings, mail))
    first = import_path(ctx, eml)
    second = import_path(ctx, eml)
    assert (first.total, first.processed, first.duplicates) == (1, 1, 0)
    assert (second.total, second.duplicates) == (1, 1)
    with ctx.db.session() as session:
        [row] = inbound_rows(session)
        assert row.source == "import" and row.source_ref == str(eml)
        assert suppressed(session, who.email) and len(items(session)) == 1


def test_import_mbox(ctx: AppContext, tmp_path: Path) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who, "registration-received")
    path = tmp_path / "inbox.mbox"
    box = mailbox.mbox(str(path))
    for raw in (autoreply(mail), reply(who.email, "請問審核進度", in_reply_to=mail.message_id), b"garbage"):
        box.add(raw)
    box.flush()
    box.close()
    result = import_path(ctx, path)
    assert result.total == 3
    with ctx.db.session() as session:
        rows = inbound_rows(session)
        assert [r.kind for r in rows] == ["autoreply", "reply", "other"]
        assert rows[0].source_ref == f"{path}#1"
        # The auto-reply's low-priority item, then the reply's; the garbage opens nothing.
        assert [i.kind for i in items(session)] == [AUTOREPLY, SupportKind.REPLY]


def test_import_maildir_and_a_folder_of_files(ctx: AppContext, tmp_path: Path) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    maildir = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    maildir.add(dsn(ctx.settings, mail))
    maildir.add(autoreply(mail))
    assert import_path(ctx, tmp_path / "Maildir").total == 2
    folder = tmp_path / "emls"
    folder.mkdir()
    (folder / "a.eml").write_bytes(reply(who.email, "一"))
    (folder / "b.eml").write_bytes(reply(who.email, "二"))
    (folder / ".hidden").write_bytes(b"not a mail")
    assert import_path(ctx, folder).total == 2
    with ctx.db.session() as session:
        assert len(inbound_rows(session)) == 4


def test_missing_path_is_a_clear_error(ctx: AppContext, tmp_path: Path) -> None:
    with pytest.raises(ImportError_, match="找不到"):
        import_path(ctx, tmp_path / "nope")


def test_cli_import_prints_a_summary(ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", ctx.settings.database.url)
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    (tmp_path / "one.eml").write_bytes(dsn(ctx.settings, mail))
    (tmp_path / "two.eml").write_bytes(b"\x00\xff broken")
    assert main(["inbound", "import", str(tmp_path / "one.eml"), str(tmp_path / "two.eml")]) == 0
    out = capsys.readouterr().out
    assert "共 2 封" in out and "已處理 1" in out and "已隔離 1" in out
    with ctx.db.session() as session:
        statuses = [r.status for r in inbound_rows(session)]
        assert statuses == [InboundStatus.PROCESSED, InboundStatus.QUARANTINED]
    assert main(["inbound", "import", str(tmp_path / "missing.eml")]) == 2
