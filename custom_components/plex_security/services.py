"""Services: ban, unban, allow and look up an address on one helper or all of them; run an audit.

Registered once in ``async_setup``. Without ``config_entry_id`` a call goes to every loaded
helper, so one tap bans an attacker on every Plex server.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util.json import JsonValueType

from .alerts import iso_time
from .api import HelperAuthError, HelperConnectionError, HelperError, HelperRequestError
from .const import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_DEVICE_ID,
    ATTR_DURATION,
    ATTR_FORCE,
    ATTR_IP,
    ATTR_MESSAGE,
    ATTR_REASON,
    ATTR_SESSION_ID,
    DOMAIN,
    SERVICE_ALLOW_IP,
    SERVICE_BAN_IP,
    SERVICE_LOOKUP_IP,
    SERVICE_REMOVE_DEVICE,
    SERVICE_RUN_AUDIT,
    SERVICE_STOP_STREAM,
    SERVICE_UNBAN_IP,
)
from .coordinator import PlexSecurityConfigEntry

MIN_BAN = timedelta(minutes=1)
MAX_BAN = timedelta(days=365)

_ENTRY = vol.Optional(ATTR_CONFIG_ENTRY_ID)
_REASON = vol.All(cv.string, vol.Length(max=200))
BAN_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_IP): cv.string,
        vol.Optional(ATTR_DURATION): cv.positive_time_period,
        vol.Optional(ATTR_REASON, default=""): _REASON,
        vol.Optional(ATTR_FORCE, default=False): cv.boolean,
        _ENTRY: cv.string,
    }
)
UNBAN_SCHEMA = vol.Schema({vol.Required(ATTR_IP): cv.string, _ENTRY: cv.string})
ALLOW_SCHEMA = vol.Schema(
    {vol.Required(ATTR_IP): cv.string, vol.Optional(ATTR_REASON, default=""): _REASON, _ENTRY: cv.string}
)
AUDIT_SCHEMA = vol.Schema({_ENTRY: cv.string})
LOOKUP_SCHEMA = vol.Schema({vol.Required(ATTR_IP): cv.string, _ENTRY: cv.string})
RECENT_ALERTS = 5
STOP_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_SESSION_ID): vol.All(cv.string, vol.Match(r"^[A-Za-z0-9_.:-]{1,64}$")),
        vol.Optional(ATTR_MESSAGE, default="This stream was stopped by the server owner."): vol.All(
            cv.string, vol.Length(min=1, max=200)
        ),
        _ENTRY: cv.string,
    }
)

REMOVE_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_DEVICE_ID): vol.All(cv.string, vol.Match(r"^[A-Za-z0-9_.:-]{1,100}$")),
        _ENTRY: cv.string,
    }
)


def _address(value: str) -> str:
    """The canonical address or network, or a translated validation error."""
    text = value.strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="invalid_ip", translation_placeholders={"ip": value[:64]}
        ) from None


def _entries(hass: HomeAssistant, call: ServiceCall) -> list[PlexSecurityConfigEntry]:
    """The loaded entries a call is for."""
    wanted = call.data.get(ATTR_CONFIG_ENTRY_ID)
    if wanted is not None:
        entry = hass.config_entries.async_get_entry(wanted)
        if entry is None or entry.domain != DOMAIN:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="unknown_entry", translation_placeholders={"entry": wanted}
            )
        if entry.state is not ConfigEntryState.LOADED:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="entry_not_loaded",
                translation_placeholders={"server": entry.title},
            )
        return [entry]
    loaded = [e for e in hass.config_entries.async_loaded_entries(DOMAIN)]
    if not loaded:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_helpers")
    return loaded


def helper_failure(entry: PlexSecurityConfigEntry, err: HelperError) -> HomeAssistantError:
    """A translated error that names the server and the helper's reason."""
    if isinstance(err, HelperRequestError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="helper_refused",
            translation_placeholders={"server": entry.title, "code": err.code, "message": err.message},
        )
    if isinstance(err, HelperAuthError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="invalid_auth")
    if isinstance(err, HelperConnectionError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"url": entry.runtime_data.coordinator.client.base_url},
        )
    return HomeAssistantError(
        translation_domain=DOMAIN, translation_key="bad_response", translation_placeholders={"error": str(err)}
    )


async def _ban(call: ServiceCall) -> ServiceResponse:
    ip = _address(call.data[ATTR_IP])
    duration: timedelta | None = call.data.get(ATTR_DURATION)
    if duration is not None and not MIN_BAN <= duration <= MAX_BAN:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="invalid_duration")
    results: list[JsonValueType] = []
    for entry in _entries(call.hass, call):
        try:
            ban = await entry.runtime_data.coordinator.client.ban(
                ip,
                duration=int(duration.total_seconds()) if duration else None,
                reason=call.data[ATTR_REASON] or "banned from Home Assistant",
                force=call.data[ATTR_FORCE],
            )
        except HelperError as err:
            raise helper_failure(entry, err) from err
        results.append(
            {
                "server": entry.title,
                "ip": ban.get("ip"),
                "expires": iso_time(ban.get("expires")),
                "enforced": ban.get("enforced"),
            }
        )
        await entry.runtime_data.coordinator.async_request_refresh()
    return {"bans": results}


async def _unban(call: ServiceCall) -> ServiceResponse:
    ip = _address(call.data[ATTR_IP])
    results: list[JsonValueType] = []
    for entry in _entries(call.hass, call):
        try:
            await entry.runtime_data.coordinator.client.unban(ip)
        except HelperRequestError as err:
            if err.code != "not_banned":
                raise helper_failure(entry, err) from err
            results.append({"server": entry.title, "ip": ip, "was_banned": False})
            continue
        except HelperError as err:
            raise helper_failure(entry, err) from err
        results.append({"server": entry.title, "ip": ip, "was_banned": True})
        await entry.runtime_data.coordinator.async_request_refresh()
    return {"unbans": results}


async def _allow(call: ServiceCall) -> ServiceResponse:
    ip = _address(call.data[ATTR_IP])
    results: list[JsonValueType] = []
    for entry in _entries(call.hass, call):
        try:
            allowed = await entry.runtime_data.coordinator.client.allow(
                ip, call.data[ATTR_REASON] or "allowed from Home Assistant"
            )
        except HelperError as err:
            raise helper_failure(entry, err) from err
        results.append({"server": entry.title, "ip": allowed.get("ip"), "unbanned": allowed.get("unbanned", [])})
        await entry.runtime_data.coordinator.async_request_refresh()
    return {"allowed": results}


async def _lookup(call: ServiceCall) -> ServiceResponse:
    ip = _address(call.data[ATTR_IP])
    if "/" in ip:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="invalid_ip", translation_placeholders={"ip": ip}
        )
    results: list[JsonValueType] = []
    for entry in _entries(call.hass, call):
        try:
            known = await entry.runtime_data.coordinator.client.lookup(ip)
        except HelperError as err:
            raise helper_failure(entry, err) from err
        alerts = known.get("alerts") or []
        seen = known.get("seen")
        if isinstance(seen, dict):
            seen = {k: iso_time(v) if k.endswith("_seen") else v for k, v in seen.items()}
        results.append(
            {
                "server": entry.title,
                "ip": known.get("ip"),
                "seen": seen,
                "failed_logins_recent": known.get("failed_auth_recent"),
                "allowed": known.get("allowed"),
                "bans": [
                    {"ip": b.get("ip"), "expires": iso_time(b.get("expires")), "reason": b.get("reason")}
                    for b in known.get("bans") or []
                ],
                "recent_alerts": [
                    {"kind": a.get("kind"), "time": iso_time(a.get("time")), "count": a.get("count")}
                    for a in alerts[:RECENT_ALERTS]
                ],
            }
        )
    return {"servers": results}


async def _audit(call: ServiceCall) -> ServiceResponse:
    results: list[JsonValueType] = []
    for entry in _entries(call.hass, call):
        try:
            report = await entry.runtime_data.coordinator.client.run_audit()
        except HelperError as err:
            raise helper_failure(entry, err) from err
        results.append({"server": entry.title, "score": report.get("score"), "counts": report.get("counts")})
        await entry.runtime_data.coordinator.async_request_refresh()
    return {"audits": results}


async def _stop_stream(call: ServiceCall) -> ServiceResponse:
    """Stop a stream on the helper whose last poll listed it (a session id is one server's)."""
    session_id, message = call.data[ATTR_SESSION_ID], call.data[ATTR_MESSAGE]
    results: list[JsonValueType] = []
    for entry in _entries(call.hass, call):
        try:
            await entry.runtime_data.coordinator.client.stop_session(session_id, message)
        except HelperRequestError as err:
            if err.code != "no_such_session":
                raise helper_failure(entry, err) from err
            continue
        except HelperError as err:
            raise helper_failure(entry, err) from err
        results.append({"server": entry.title, "session_id": session_id})
        await entry.runtime_data.coordinator.async_request_refresh()
    if not results:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="no_such_session",
            translation_placeholders={"session_id": session_id},
        )
    return {"stopped": results}


async def _remove_device(call: ServiceCall) -> ServiceResponse:
    """Remove a device from the plex.tv account of the helper whose last listing showed it."""
    device_id = call.data[ATTR_DEVICE_ID]
    results: list[JsonValueType] = []
    for entry in _entries(call.hass, call):
        try:
            answer = await entry.runtime_data.coordinator.client.remove_device(device_id)
        except HelperRequestError as err:
            if err.code not in ("no_such_device", "plex_tv_off"):
                raise helper_failure(entry, err) from err
            continue
        except HelperError as err:
            raise helper_failure(entry, err) from err
        results.append({"server": entry.title, "device_id": device_id, "name": str(answer.get("name", ""))})
    if not results:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="no_such_device",
            translation_placeholders={"device_id": device_id},
        )
    return {"removed": results}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's services."""
    for name, handler, schema in (
        (SERVICE_BAN_IP, _ban, BAN_SCHEMA),
        (SERVICE_UNBAN_IP, _unban, UNBAN_SCHEMA),
        (SERVICE_ALLOW_IP, _allow, ALLOW_SCHEMA),
        (SERVICE_RUN_AUDIT, _audit, AUDIT_SCHEMA),
        (SERVICE_STOP_STREAM, _stop_stream, STOP_SCHEMA),
        (SERVICE_REMOVE_DEVICE, _remove_device, REMOVE_SCHEMA),
    ):
        hass.services.async_register(DOMAIN, name, handler, schema=schema, supports_response=SupportsResponse.OPTIONAL)
    # A lookup is its answer: only callable with a response.
    hass.services.async_register(
        DOMAIN, SERVICE_LOOKUP_IP, _lookup, schema=LOOKUP_SCHEMA, supports_response=SupportsResponse.ONLY
    )
