"""The rules the portal, the JSON API and the CLI share. Views stay thin and call these."""


class ServiceError(ValueError):
    """A request the service refuses, with a message fit to show the user.

    `field` names the input at fault when there is one; `code` is a stable machine name.
    """

    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class NotFound(LookupError):
    """No such object in this tenant (another tenant's object is reported the same way)."""
