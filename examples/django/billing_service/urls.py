"""The billing service's URLs."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from invoices.views import InvoiceDetail, InvoiceList


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("healthz", health),
    path("invoices", InvoiceList.as_view()),
    path("invoices/<int:number>", InvoiceDetail.as_view()),
]
