// The Plex Security threat view: recent attackers, active bans and open findings of every helper,
// with one-tap unban, ban-longer and monitor/enforce. Served and loaded by the integration itself
// (no separate install); use it as `type: custom:plex-security-threats` on any dashboard.
// Data: the websocket command plex_security/threats; refreshed on every alert event.

const EVENT = "plex_security_suspicious_access";
const LONGER = { days: 7 };

const esc = (value) =>
  String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

const left = (seconds) => {
  const s = Number(seconds) || 0;
  if (s >= 86400) return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.max(1, Math.ceil(s / 60))} min`;
};

const ago = (iso) => {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (!iso || Number.isNaN(s)) return "";
  if (s < 90) return "just now";
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
};

const STYLE = `
  :host { display: block; }
  ha-card { padding: 12px 16px 16px; }
  h2 { font-size: 1.15em; margin: 4px 0 8px; font-weight: 500; }
  h3 { font-size: 1em; margin: 14px 0 6px; font-weight: 500; color: var(--secondary-text-color); }
  .server { margin-bottom: 10px; }
  .firewall { display: flex; align-items: center; gap: 8px; margin: 4px 0; }
  .row { display: flex; align-items: flex-start; gap: 8px; padding: 6px 0; border-top: 1px solid var(--divider-color); }
  .main { flex: 1; min-width: 0; }
  .ip { font-family: var(--code-font-family, monospace); font-weight: 600; }
  .why { color: var(--secondary-text-color); font-size: 0.92em; overflow-wrap: anywhere; }
  .badge { font-size: 0.8em; padding: 1px 6px; border-radius: 8px; background: var(--secondary-background-color); }
  .critical, .high { color: var(--error-color); }
  .medium { color: var(--warning-color); }
  button { font: inherit; font-size: 0.9em; padding: 4px 10px; border-radius: 14px; cursor: pointer;
           border: 1px solid var(--primary-color); background: none; color: var(--primary-color); white-space: nowrap; }
  button.primary { background: var(--primary-color); color: var(--text-primary-color, #fff); }
  .empty { color: var(--secondary-text-color); font-style: italic; padding: 4px 0; }
  .error { color: var(--error-color); }
`;

class PlexSecurityThreatsCard extends HTMLElement {
  setConfig(config) {
    this._config = config || {};
  }

  static getStubConfig() {
    return {};
  }

  getCardSize() {
    return 8;
  }

  set hass(hass) {
    this._hass = hass;
    if (!this._started && this.isConnected) this._start();
  }

  connectedCallback() {
    if (this._hass && !this._started) this._start();
  }

  disconnectedCallback() {
    this._started = false;
    clearInterval(this._timer);
    if (this._unsubscribe) this._unsubscribe.then((unsub) => unsub()).catch(() => {});
    this._unsubscribe = undefined;
  }

  _start() {
    this._started = true;
    if (!this.shadowRoot) {
      this.attachShadow({ mode: "open" });
      this.shadowRoot.addEventListener("click", (ev) => this._click(ev));
    }
    this._refresh();
    // An alert (and every ban or unban, which the helper reports as alerts too) refreshes the view.
    this._unsubscribe = this._hass.connection.subscribeEvents(() => this._refresh(), EVENT);
    this._timer = setInterval(() => this._refresh(), 30000);
  }

  async _refresh() {
    const msg = { type: "plex_security/threats" };
    if (this._config && this._config.config_entry_id) msg.config_entry_id = this._config.config_entry_id;
    try {
      this._data = await this._hass.callWS(msg);
      this._error = undefined;
    } catch (err) {
      this._error = err && err.message ? err.message : String(err);
    }
    this._render();
  }

  async _click(ev) {
    const button = ev.composedPath().find((el) => el.tagName === "BUTTON");
    if (!button) return;
    const { action, ip, entry, entity } = button.dataset;
    button.disabled = true;
    try {
      if (action === "unban") {
        await this._hass.callService("plex_security", "unban_ip", { ip, config_entry_id: entry });
      } else if (action === "ban") {
        await this._hass.callService("plex_security", "ban_ip", {
          ip, config_entry_id: entry, duration: LONGER, reason: "banned from the threat view",
        });
      } else if (action === "enforce" || action === "monitor") {
        await this._hass.callService("switch", action === "enforce" ? "turn_on" : "turn_off", { entity_id: entity });
      }
      this._error = undefined;
    } catch (err) {
      this._error = err && err.message ? err.message : String(err);
    }
    await this._refresh();
  }

  _render() {
    if (!this.shadowRoot) return;
    const servers = (this._data && this._data.servers) || [];
    const title = (this._config && this._config.title) || "Threats";
    const body = servers.length
      ? servers.map((s) => this._server(s, servers.length > 1)).join("")
      : `<div class="empty">No Plex Security helper is loaded.</div>`;
    this.shadowRoot.innerHTML = `<style>${STYLE}</style><ha-card><h2>${esc(title)}</h2>${
      this._error ? `<div class="error">${esc(this._error)}</div>` : ""
    }${body}</ha-card>`;
  }

  _server(s, named) {
    const entry = esc(s.config_entry_id);
    const fw = s.firewall || {};
    const state = { off: "off (no firewall backend)", monitor: "monitor only (bans are recorded, nothing is blocked)",
      enforcing: "enforcing", error: "error" }[fw.state] || fw.state;
    const toggle = s.switch_entity
      ? fw.mode === "enforce"
        ? `<button data-action="monitor" data-entity="${esc(s.switch_entity)}">Monitor only</button>`
        : `<button class="primary" data-action="enforce" data-entity="${esc(s.switch_entity)}">Enforce</button>`
      : "";
    const attackers = (s.attackers || []).map((a) => `
      <div class="row attacker" data-ip="${esc(a.ip)}">
        <div class="main">
          <span class="ip">${esc(a.ip)}</span>${a.country ? ` <span class="badge">${esc(a.country)}</span>` : ""}
          ${a.banned_as ? ` <span class="badge">banned${a.banned_as !== a.ip ? ` as ${esc(a.banned_as)}` : ""}</span>` : ""}
          <div class="why">${esc(a.title)}: ${esc(a.reason)}${a.user ? ` · user ${esc(a.user)}` : ""} · ${esc(ago(a.time))}</div>
        </div>
        ${a.banned_as
          ? `<button data-action="unban" data-ip="${esc(a.banned_as)}" data-entry="${entry}">Unban</button>`
          : `<button data-action="ban" data-ip="${esc(a.ip)}" data-entry="${entry}">Ban 7 d</button>`}
      </div>`).join("");
    const bans = (s.bans || []).map((b) => `
      <div class="row ban" data-ip="${esc(b.ip)}">
        <div class="main">
          <span class="ip">${esc(b.ip)}</span> <span class="badge">${esc(b.origin)}</span>
          <div class="why">${esc(b.reason)} · ${esc(left(b.remaining_s))} left${b.enforced ? "" : " · recorded only"}</div>
        </div>
        <button data-action="unban" data-ip="${esc(b.ip)}" data-entry="${entry}">Unban</button>
        <button data-action="ban" data-ip="${esc(b.ip)}" data-entry="${entry}">Ban longer</button>
      </div>`).join("");
    // The fleet's decisions (CrowdSec) enforced here: lifted on the LAPI host, not from here.
    const fleet = (s.fleet || []).map((d) => `
      <div class="row fleet" data-ip="${esc(d.ip)}">
        <div class="main">
          <span class="ip">${esc(d.ip)}</span> <span class="badge">${esc(d.lapi_origin || d.origin)}</span>
          <div class="why">${esc(d.scenario)} · ${esc(left(d.remaining_s))} left</div>
        </div>
      </div>`).join("");
    const findings = (s.findings || []).map((f) => `
      <div class="row finding">
        <div class="main">
          <span class="${esc(f.severity)}">${esc(f.severity)}</span> ${esc(f.title)}${f.subject ? ` (${esc(f.subject)})` : ""}
          <div class="why">${esc(f.remediation)}</div>
        </div>
      </div>`).join("");
    return `<div class="server">
      ${named ? `<h3>${esc(s.title)}</h3>` : ""}
      ${s.error ? `<div class="error">${esc(s.error)}</div>` : ""}
      <div class="firewall"><span>Firewall: <b class="fw-state">${esc(state)}</b></span>${toggle}</div>
      <h3>Recent attackers</h3>${attackers || `<div class="empty">No attacks seen.</div>`}
      <h3>Active bans</h3>${bans || `<div class="empty">No active bans.</div>`}
      ${fleet ? `<h3>Fleet decisions (CrowdSec)</h3>${fleet}` : ""}
      <h3>Open findings</h3>${findings || `<div class="empty">No open findings.</div>`}
    </div>`;
  }
}

if (!customElements.get("plex-security-threats")) {
  customElements.define("plex-security-threats", PlexSecurityThreatsCard);
  window.customCards = window.customCards || [];
  window.customCards.push({
    type: "plex-security-threats",
    name: "Plex Security threats",
    description: "Recent attackers, active bans and open findings, with unban, ban longer and monitor/enforce.",
  });
}
