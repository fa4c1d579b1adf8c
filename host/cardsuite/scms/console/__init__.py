"""The SCMS web console: server-rendered pages (jinja2) for administrators, operators and auditors, mounted at
/console by the server (docs/scms-console.md). The application is console.app.Console."""
