"""Config flow: find the helper, check the token, one entry per helper; reauth, reconfigure, options."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SSL, CONF_TOKEN
from homeassistant.core import callback

from . import client_from_data
from .api import HelperAuthError, HelperConnectionError, HelperError, Snapshot, fetch_fingerprint
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


class PlexSecurityConfigFlow(ConfigFlow, domain=DOMAIN):
    """Adds one helper (one Plex server) per entry."""

    VERSION = 1
    _candidate: dict[str, Any]

    async def _probe(self, data: dict[str, Any], errors: dict[str, str]) -> Snapshot | None:
        """Ask the helper for its status; fill *errors* when that fails."""
        try:
            return await client_from_data(self.hass, data).status()
        except HelperAuthError:
            errors["base"] = "invalid_auth"
        except HelperConnectionError:
            errors["base"] = "cannot_connect"
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
            seen = await fetch_fingerprint(str(data[CONF_HOST]), int(data[CONF_PORT]))
        except HelperConnectionError:
            errors["base"] = "cannot_connect"
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
            description_placeholders={"fingerprint": data[CONF_FINGERPRINT], "host": str(data[CONF_HOST])},
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
            if await self._needs_pinning(data, errors):
                return await self.async_step_confirm_fingerprint()
            if not errors and (snapshot := await self._probe(data, errors)):
                return await self._finish(data, snapshot)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
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
            description_placeholders={"server": entry.title},
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Change host, port or TLS of the same helper."""
        errors: dict[str, str] = {}
        entry = self._get_reconfigure_entry()
        if user_input is not None:
            data = {**entry.data, **user_input}
            if await self._needs_pinning(data, errors):
                return await self.async_step_confirm_fingerprint()
            if not errors and (snapshot := await self._probe(data, errors)):
                return await self._finish(data, snapshot)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(CONNECTION_SCHEMA, user_input or dict(entry.data)),
            errors=errors,
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> PlexSecurityOptionsFlow:
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

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form; saving reloads the entry."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(OPTIONS_SCHEMA, dict(self.config_entry.options)),
        )


__all__ = ["SOURCE_REAUTH", "SOURCE_RECONFIGURE", "PlexSecurityConfigFlow"]
