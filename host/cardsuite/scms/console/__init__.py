"""The SCMS web console: server-rendered pages (jinja2) for administrators, operators and auditors, mounted at
/console by the server (docs/scms.md, "Console")."""

from cardsuite.scms.console.app import Console

__all__ = ["Console"]
