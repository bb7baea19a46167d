"""The bounce lab: real MTAs (Postfix, Exim, OpenSMTPD, Sendmail, DMA, Courier from Debian's packages) made
to bounce on 127.0.0.1 at every run, each DSN fed to mailflow's parser. docs/ARCHITECTURE.md (Tests)
describes it; cells.py lists the failures, world.py drives them, each MTA's module pins what it writes,
test_lab.py checks that and the parser's reading."""
