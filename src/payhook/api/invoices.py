"""``/v1/invoices``: one invoice per paid session, within the caller's merchant and mode."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from payhook.api.responses import merchant_get, merchant_list
from payhook.services import invoices


async def list_invoices(request: Request) -> Response:
    return await merchant_list(request, invoices.list_invoices, invoices.to_object)


async def get_invoice(request: Request) -> Response:
    return await merchant_get(request, "in", invoices.get, invoices.to_object)


routes = [
    Route("/v1/invoices", list_invoices, methods=["GET"]),
    Route("/v1/invoices/{id}", get_invoice, methods=["GET"]),
]
