"""DRF views: request.user is the caller the gateway vouched for (a GatewayUser), and the
gateway's roles decide with HasRole."""

from __future__ import annotations

from gateway_context_django.drf import HasRole
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from invoices.models import Invoice


class InvoiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Invoice
        fields = ["id", "customer", "amount_cents"]


class InvoiceList(APIView):
    def get_permissions(self) -> list[BasePermission]:
        # Anyone signed in may read their invoices; writing needs `billing` or `admin`.
        if self.request.method == "POST":
            return [HasRole("billing", "admin")()]
        return [IsAuthenticated()]

    def get(self, request: Request) -> Response:
        user = request.user
        mine = Invoice.objects.filter(owner_id=user.id).order_by("id")
        caller = {"user_id": user.id, "email": user.email, "roles": sorted(user.roles)}
        return Response({"caller": caller, "invoices": InvoiceSerializer(mine, many=True).data})

    def post(self, request: Request) -> Response:
        serializer = InvoiceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save(owner_id=request.user.id)
        return Response(serializer.data, status=201)


class InvoiceDetail(APIView):
    permission_classes = [HasRole("admin")]

    def delete(self, request: Request, number: int) -> Response:
        Invoice.objects.filter(id=number).delete()
        return Response(status=204)
