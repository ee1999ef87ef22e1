"""Config flow: find the helper, check the token, one entry per helper; reauth, reconfigure, options."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SSL, CONF_TOKEN
from homeassistant.core import callback
from homeassistant.util.ssl import get_default_no_verify_context

from . import client_from_data
from .api import (
    HelperAuthError,
    HelperConnectionError,
    HelperError,
    HelperRequestError,
    Snapshot,
    fetch_fingerprint,
)
from .const import (
    CONF_ATTACK_WINDOW,
    CONF_FINGERPRINT,
    CONF_LONG_POLL,
    CONF_SCAN_INTERVAL,
    CONF_VERIFY_SSL,
    DEFAULT_ATTACK_WINDOW,
    DEFAULT_PORT,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
)
from .coordinator import PlexSecurityConfigEntry

_LOGGER = logging.getLogger(__name__)

CONNECTION_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): str,
        vol.Required(CONF_PORT, default=DEFAULT_PORT): vol.All(vol.Coerce(int), vol.Range(min=1, max=65535)),
        vol.Required(CONF_SSL, default=False): bool,
        vol.Required(CONF_VERIFY_SSL, default=True): bool,
    }
)
USER_SCHEMA = CONNECTION_SCHEMA.extend({vol.Required(CONF_TOKEN): str})
REAUTH_SCHEMA = vol.Schema({vol.Required(CONF_TOKEN): str})
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.?$")


def clean_host(data: dict[str, Any]) -> bool:
    """Reduce a pasted URL (``http://host:8788/...``) or ``host:port`` in Host to the host name.

    The URL's port and scheme replace the Port and SSL fields. False when no host remains.
    """
    text = str(data[CONF_HOST]).strip()
    if "://" in text or "/" in text or text.count(":") == 1:
        try:
            parts = urlsplit(text if "://" in text else f"//{text}")
            port = parts.port
        except ValueError:
            return False
        text = parts.hostname or ""
        if port is not None:
            data[CONF_PORT] = port
        if parts.scheme in ("http", "https"):
            data[CONF_SSL] = parts.scheme == "https"
    text = text.strip("[]")
    try:
        text = str(ipaddress.ip_address(text))
    except ValueError:
        if not _HOSTNAME.match(text) or len(text) > 253:
            return False
    data[CONF_HOST] = text
    return True


class PlexSecurityConfigFlow(ConfigFlow, domain=DOMAIN):
    """Adds one helper (one Plex server) per entry."""

    VERSION = 1
    _candidate: dict[str, Any]

    def __init__(self) -> None:
        self._placeholders: dict[str, str] = {}  # what an error message names (the helper's wait)

    async def _probe(self, data: dict[str, Any], errors: dict[str, str]) -> Snapshot | None:
        """Ask the helper for its status; fill *errors* with what went wrong, told apart."""
        try:
            return await client_from_data(self.hass, data).status()
        except HelperAuthError:
            errors["base"] = "invalid_auth"
        except HelperConnectionError as err:
            errors["base"] = err.reason
        except HelperRequestError as err:
            if not err.refuses_address:
                _LOGGER.warning("The helper refused the status request: %s (%s)", err.message, err.code)
                errors["base"] = "unknown"
                return None
            errors["base"] = "client_not_allowed" if err.status == 403 else "address_blocked"
            self._placeholders = {"seconds": str(err.retry_after or 60), "message": err.message}
        except HelperError:
            _LOGGER.exception("Unexpected answer from the helper")
            errors["base"] = "unknown"
        return None

    async def _needs_pinning(self, data: dict[str, Any], errors: dict[str, str]) -> bool:
        """A self-signed helper (TLS without CA checks): fetch its fingerprint for confirmation."""
        if not (data.get(CONF_SSL) and not data.get(CONF_VERIFY_SSL, True)):
            data.pop(CONF_FINGERPRINT, None)
            return False
        try:
            seen = await fetch_fingerprint(str(data[CONF_HOST]), int(data[CONF_PORT]), get_default_no_verify_context())
        except HelperConnectionError as err:
            errors["base"] = err.reason
            return False
        self._candidate = {**data, CONF_FINGERPRINT: seen}
        return True

    async def async_step_confirm_fingerprint(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the certificate's fingerprint; the owner compares it with what ``init`` printed."""
        data = self._candidate
        errors: dict[str, str] = {}
        if user_input is not None and (snapshot := await self._probe(data, errors)):
            return await self._finish(data, snapshot)
        return self.async_show_form(
            step_id="confirm_fingerprint",
            errors=errors,
            description_placeholders={
                **self._placeholders,
                "fingerprint": data[CONF_FINGERPRINT],
                "host": str(data[CONF_HOST]),
            },
        )

    async def _finish(self, data: dict[str, Any], snapshot: Snapshot) -> ConfigFlowResult:
        await self.async_set_unique_id(snapshot.helper_id)
        if self.source == SOURCE_RECONFIGURE:
            self._abort_if_unique_id_mismatch(reason="wrong_helper")
            entry = self._get_reconfigure_entry()
            changes = {k: v for k, v in data.items() if k != CONF_TOKEN}
            if CONF_FINGERPRINT not in data:
                changes[CONF_FINGERPRINT] = None
            return self.async_update_reload_and_abort(entry, data={**entry.data, **changes})
        self._abort_if_unique_id_configured()
        return self.async_create_entry(title=f"Plex Security ({data[CONF_HOST]})", data=data)

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask where the helper is and which token it gave at ``init``."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = dict(user_input)
            if not clean_host(data):
                errors[CONF_HOST] = "invalid_host"
            elif await self._needs_pinning(data, errors):
                return await self.async_step_confirm_fingerprint()
            if not errors and (snapshot := await self._probe(data, errors)):
                return await self._finish(data, snapshot)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
            description_placeholders=self._placeholders,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The helper rejected the token (a new ``init``, or the token was changed)."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the new token."""
        errors: dict[str, str] = {}
        entry = self._get_reauth_entry()
        if user_input is not None:
            data = {**entry.data, CONF_TOKEN: user_input[CONF_TOKEN]}
            if snapshot := await self._probe(data, errors):
                await self.async_set_unique_id(snapshot.helper_id)
                self._abort_if_unique_id_mismatch(reason="wrong_helper")
                return self.async_update_reload_and_abort(entry, data_updates={CONF_TOKEN: user_input[CONF_TOKEN]})
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=REAUTH_SCHEMA,
            errors=errors,
            description_placeholders={**self._placeholders, "server": entry.title},
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Change host, port or TLS of the same helper."""
        errors: dict[str, str] = {}
        entry = self._get_reconfigure_entry()
        if user_input is not None:
            data = {**entry.data, **user_input}
            if not clean_host(data):
                errors[CONF_HOST] = "invalid_host"
            elif await self._needs_pinning(data, errors):
                return await self.async_step_confirm_fingerprint()
            if not errors and (snapshot := await self._probe(data, errors)):
                return await self._finish(data, snapshot)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(CONNECTION_SCHEMA, user_input or dict(entry.data)),
            errors=errors,
            description_placeholders=self._placeholders,
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: PlexSecurityConfigEntry) -> PlexSecurityOptionsFlow:
        """Poll interval, long-poll and the under-attack window."""
        return PlexSecurityOptionsFlow()


OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_SCAN_INTERVAL, default=DEFAULT_SCAN_INTERVAL): vol.All(
            vol.Coerce(int), vol.Range(min=10, max=3600)
        ),
        vol.Required(CONF_LONG_POLL, default=True): bool,
        vol.Required(CONF_ATTACK_WINDOW, default=DEFAULT_ATTACK_WINDOW): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=1440)
        ),
    }
)


class PlexSecurityOptionsFlow(OptionsFlow):
    """Options of one helper's entry."""

    config_entry: PlexSecurityConfigEntry

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form; saving reloads the entry."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(OPTIONS_SCHEMA, dict(self.config_entry.options)),
        )


__all__ = ["SOURCE_REAUTH", "SOURCE_RECONFIGURE", "PlexSecurityConfigFlow"]
