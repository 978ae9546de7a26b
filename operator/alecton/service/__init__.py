"""The operations the `alecton` command (cli/) and the HTTP API (web/) both offer.

Each lives here once, below both faces: typed arguments in, objects or typed results
out, failures as the errors of `service.errors`. Nothing here prints, exits or knows an
HTTP status: the CLI maps the errors to exit codes and one-line messages, the web to
HTTP statuses and JSON.
"""
