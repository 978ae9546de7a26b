"""How an operation says it cannot be done: a message for the person who asked, and a kind
each face maps on (the CLI to an exit code, the web to an HTTP status).

An error raised while handling the API server's refusal keeps it as `__context__` (even
`from None`): the web answers with the API server's status and reason then.
"""

from __future__ import annotations


class ServiceError(Exception):
    """The operation failed for a reason the message states (exit 1, HTTP 400)."""


class NotFoundError(ServiceError):
    """A named object does not exist (exit 3, HTTP 404)."""


class ConflictError(ServiceError):
    """Immutability, ownership, or a change by someone else in between (exit 4, HTTP 409)."""


class InvalidRequestError(ServiceError):
    """The inputs can never work as they are: a refused chart, values or kubeconfig."""


class ForbiddenError(ServiceError):
    """The caller lacks a right; the message says which one (HTTP 403)."""
