"""HubSpot's public token API: code exchange, refresh, token info and revocation (brief section 4)."""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scopematrix.simulator.base import SimBase, api_error
from scopematrix.simulator.state import TokenRecord


class TokenRoutes(SimBase):
    async def token(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return api_error(415, "error", "Content-Type must be application/x-www-form-urlencoded", "VALIDATION_ERROR")
        form = await request.form()
        fields: Mapping[str, str] = {k: str(v) for k, v in form.items()}
        app = self.scenario.apps.get(fields.get("client_id", ""))
        if app is None:
            return api_error(
                400, "BAD_CLIENT_ID", "missing or unknown client id", "VALIDATION_ERROR", "invalid_request"
            )
        grant_type = fields.get("grant_type", "")
        if grant_type not in ("authorization_code", "refresh_token"):
            return api_error(
                400, "BAD_GRANT_TYPE", "unsupported grant type", "VALIDATION_ERROR", "unsupported_grant_type"
            )
        if not hmac.compare_digest(app.client_secret.encode(), fields.get("client_secret", "").encode()):
            return api_error(
                400,
                "BAD_CLIENT_SECRET",
                "missing or invalid client secret",
                "VALIDATION_ERROR",
                "invalid_client",
            )
        if grant_type == "refresh_token":
            record = self.state.refresh_tokens.get(fields.get("refresh_token", ""))
            if record is None or record.client_id != app.client_id:
                return api_error(
                    400,
                    "BAD_REFRESH_TOKEN",
                    "missing or invalid refresh token",
                    "VALIDATION_ERROR",
                    "invalid_grant",
                )
            access = self.state.mint_access(record, self.options.access_ttl_s)
            return self._token_response(access, fields["refresh_token"], record)
        code = self.state.codes.get(fields.get("code", ""))
        if code is None or code.used or code.client_id != app.client_id or code.expires_at < time.time():
            return api_error(400, "BAD_AUTH_CODE", "missing or invalid auth code", "VALIDATION_ERROR", "invalid_grant")
        if fields.get("redirect_uri", "") != code.redirect_uri:
            return api_error(
                400, "BAD_REDIRECT_URI", "redirect_uri does not match", "VALIDATION_ERROR", "invalid_grant"
            )
        code.used = True
        record = TokenRecord(app.client_id, code.hub_id, code.user_id, code.scopes)
        refresh = self.state.mint_refresh(record)
        return self._token_response(self.state.mint_access(record, self.options.access_ttl_s), refresh, record)

    def _token_response(self, access: str, refresh: str, record: TokenRecord) -> JSONResponse:
        return JSONResponse(
            {
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": self.options.access_ttl_s,
                "token_type": "bearer",
                "hub_id": record.hub_id,
                "scopes": list(record.scopes),
            }
        )

    def _token_owner(self, user_id: str, hub_id: int) -> dict[str, Any]:
        user = self.scenario.users[user_id]
        return {
            "user": user.email,
            "hub_domain": f"hub-{hub_id}.hubspot.com",
            "hub_id": hub_id,
            "user_id": 10_000 + list(self.scenario.users).index(user_id),
        }

    async def access_token_info(self, request: Request) -> Response:
        token = request.path_params["token"]
        record = self.state.access_tokens.get(token)
        if record is None or record.expires_at < time.time():
            return api_error(404, "error", "access token not found or expired", "OBJECT_NOT_FOUND")
        app = self.scenario.apps[record.client_id]
        owner = self._token_owner(record.user_id, record.hub_id)
        return JSONResponse(
            {
                "token": token,
                **owner,
                "scopes": list(record.scopes),
                "app_id": app.app_id,
                "expires_in": max(0, int(record.expires_at - time.time())),
                "token_type": "access",
                "is_private_distribution": False,
                "signed_access_token": {
                    "appId": app.app_id,
                    "hubId": record.hub_id,
                    "hublet": "na1",
                    "installingUserId": owner["user_id"],
                    "isUserLevel": False,
                    "scopes": list(record.scopes),
                },
            }
        )

    async def refresh_token_info(self, request: Request) -> Response:
        token = request.path_params["token"]
        record = self.state.refresh_tokens.get(token)
        if record is None:
            return api_error(404, "error", "refresh token not found", "OBJECT_NOT_FOUND")
        if request.method == "DELETE":
            del self.state.refresh_tokens[token]
            return Response(status_code=204)
        owner = self._token_owner(record.user_id, record.hub_id)
        return JSONResponse(
            {
                "token": token,
                **owner,
                "scopes": list(record.scopes),
                "client_id": record.client_id,
                "token_type": "refresh",
            }
        )
