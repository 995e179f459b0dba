"""The test site's views: DRF views behind GatewayContextAuthentication and HasRole, and a
plain Django view that reads what the middleware set."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, JsonResponse
from django.urls import path
from gateway_context_django.drf import HasRole
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


def caller(request: Any) -> dict[str, Any]:
    user = request.user
    context = request.gateway
    return {
        "user": type(user).__name__,
        "is_authenticated": user.is_authenticated,
        "local_pk": user.pk if type(user).__name__ == "User" else None,
        "username": user.get_username() if user.is_authenticated else None,
        "auth_method": context.auth_method,
        "user_id": context.user_id,
        "email": context.email,
        "roles": list(context.roles),
    }


class Invoices(APIView):
    def get(self, request: Request) -> Response:
        assert request.auth is request.gateway
        return Response(caller(request))


class Invoice(APIView):
    permission_classes = [HasRole("admin", "billing-admin")]

    def get(self, request: Request, number: int) -> Response:
        raise Http404("no such invoice")

    def delete(self, request: Request, number: int) -> Response:
        return Response({"deleted": number})

    def post(self, request: Request, number: int) -> Response:
        serializer = NewLine(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.data, status=201)


class NewLine(serializers.Serializer):  # type: ignore[type-arg]
    amount_cents = serializers.IntegerField(min_value=1)


class Public(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(caller(request))


def plain(request: HttpRequest) -> JsonResponse:
    return JsonResponse(caller(request))


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("invoices", Invoices.as_view()),
    path("invoices/<int:number>", Invoice.as_view()),
    path("public", Public.as_view()),
    path("plain", plain),
    path("healthz", health),
]
