"""`POST /api/auth/token/`: username and password in, API token out, behind the login lockout.

Replaces DRF's `obtain_auth_token` so that the endpoint refuses fields it does not
know (like every write endpoint of the API), tells a locked client so with a 429 and
`Retry-After`, and documents each answer in the OpenAPI schema.

The lockout is django-axes' (accounts/lockout.py). Its backend needs the request, and
the one its middleware looks at afterwards: `authenticate()` gets DRF's underlying
Django request (`request._request`), on which axes marks a locked-out attempt. axes'
documented DRF recipe (raising DRF's PermissionDenied from its `user_locked_out`
signal) is not used: that signal fires for every login path, the page's included, and
this view answers the lock itself with the shop's `{code, detail}`.
"""

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers, serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import lockout
from core.api_errors import StrictInputSerializer, error_body
from core.errors import InvalidInput
from core.openapi import ErrorSerializer


class TokenInputSerializer(StrictInputSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()


@extend_schema(tags=["auth"])
class TokenApi(APIView):
    # No authentication: a stale or foreign Authorization header must not stop a login.
    authentication_classes = ()
    permission_classes = (AllowAny,)
    parser_classes = (parsers.JSONParser, parsers.FormParser, parsers.MultiPartParser)

    @extend_schema(
        auth=[],
        request=TokenInputSerializer,
        responses={
            200: TokenOutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Missing fields, unknown fields or wrong credentials."),
            429: OpenApiResponse(ErrorSerializer, description="login_locked: too many failures; see Retry-After."),
        },
    )
    def post(self, request):
        data = TokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username, password = data.validated_data["username"], data.validated_data["password"]
        django_request = request._request  # the request axes marks and its middleware reads
        user = authenticate(request=django_request, username=username, password=password)
        if user is not None:
            lockout.forget_failures(username)  # no login() here, so axes' user_logged_in does not run
            token, _ = Token.objects.get_or_create(user=user)
            return Response(TokenOutputSerializer({"token": token.key}).data)
        lock = lockout.lockout_for(django_request, username)  # locked before, or by this failure
        if lock is None:
            raise InvalidInput("Unable to log in with the provided credentials.")
        error = lock.error()
        return Response(
            error_body(error.code, error.detail, **error.extra),
            status=error.status,
            headers={"Retry-After": str(lock.retry_after)},
        )
