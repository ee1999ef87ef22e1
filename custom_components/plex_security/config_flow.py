"""Config flow: find the helper, check the token, one entry per helper."""

from __future__ import annotations

import logging
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SSL, CONF_TOKEN

from . import client_from_data
from .api import HelperAuthError, HelperConnectionError, HelperError
from .const import CONF_VERIFY_SSL, DEFAULT_PORT, DOMAIN

_LOGGER = logging.getLogger(__name__)

USER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): str,
        vol.Required(CONF_PORT, default=DEFAULT_PORT): vol.All(vol.Coerce(int), vol.Range(min=1, max=65535)),
        vol.Required(CONF_TOKEN): str,
        vol.Required(CONF_SSL, default=False): bool,
        vol.Required(CONF_VERIFY_SSL, default=True): bool,
    }
)


class PlexSecurityConfigFlow(ConfigFlow, domain=DOMAIN):
    """Adds one helper (one Plex server) per entry."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask where the helper is and which token it gave at ``init``."""
        errors: dict[str, str] = {}
        if user_input is not None:
            client = client_from_data(self.hass, user_input)
            try:
                snapshot = await client.status()
            except HelperAuthError:
                errors["base"] = "invalid_auth"
            except HelperConnectionError:
                errors["base"] = "cannot_connect"
            except HelperError:
                _LOGGER.exception("Unexpected answer from the helper")
                errors["base"] = "unknown"
            else:
                await self.async_set_unique_id(snapshot.helper_id)
                self._abort_if_unique_id_configured()
                return self.async_create_entry(title=f"Plex Security ({user_input[CONF_HOST]})", data=user_input)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
        )
