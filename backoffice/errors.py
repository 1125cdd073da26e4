class DomainError(Exception):
    """A business rule refused the operation. The message is written for staff and API clients."""

    code = "domain_error"
    status = 409

    def __init__(self, message: str = "", *, details: list | None = None):
        super().__init__(message or self.__doc__ or self.code)
        self.details = details or []


class NotFound(DomainError):
    """The object does not exist."""

    code = "not_found"
    status = 404


class InvalidInput(DomainError):
    """The input is not acceptable."""

    code = "invalid_request"
    status = 400
