"""Every error payhook raises on purpose, as one tree; :mod:`payhook.api.errors` maps it to HTTP.

::

    PayhookError
    ├── InvalidRequest         400  invalid_request_error / <code>   (param names the field)
    ├── Unauthorized           401  authentication_error
    ├── NotFound               404  invalid_request_error / resource_missing
    ├── MethodNotAllowed       405  invalid_request_error / method_not_allowed
    ├── RequestTimeout         408  invalid_request_error / request_timeout
    ├── Conflict               409  invalid_request_error / <code>
    ├── PayloadTooLarge        413  invalid_request_error / payload_too_large
    ├── UnsupportedMediaType   415  invalid_request_error / unsupported_media_type
    ├── StorageUnavailable     503  api_error / storage_unavailable
    └── TooManyConnections     503  api_error / too_many_connections

Domain and service code raise these; none of it builds an HTTP response.
"""


class PayhookError(Exception):
    status = 500
    type = "api_error"
    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(PayhookError):
    status = 400
    type = "invalid_request_error"
    code = "parameter_invalid"


class Unauthorized(PayhookError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class NotFound(PayhookError):
    status = 404
    type = "invalid_request_error"
    code = "resource_missing"


class MethodNotAllowed(PayhookError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTimeout(PayhookError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class Conflict(PayhookError):
    status = 409
    type = "invalid_request_error"
    code = "state_conflict"


class PayloadTooLarge(PayhookError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class UnsupportedMediaType(PayhookError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class StorageUnavailable(PayhookError):
    status = 503
    type = "api_error"
    code = "storage_unavailable"


class TooManyConnections(PayhookError):
    status = 503
    type = "api_error"
    code = "too_many_connections"
