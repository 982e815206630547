// Shared by the car and fleet pages: the access token, calls to the API, the
// connection-state marker, and formatting. A plain script (no modules, no build
// step) that defines one global, `Tributary`.
"use strict";

window.Tributary = (function () {
  const TOKEN_KEY = "tributary.token";
  const RECENT_KEY = "tributary.recentVehicles";
  const RECENT_MAX = 8;
  /** The API's rule for a vehicle id. Ids made only of dots are valid there,
   *  but a browser resolves them away in a URL path, so no page can ask for them. */
  const VEHICLE_ID = /^[A-Za-z0-9._-]{1,64}$/;
  const VEHICLE_ID_RULE = "1 to 64 letters, digits, “-”, “_” or “.” (a VIN fits)";

  const byId = (id) => document.getElementById(id);

  // --- Access token -------------------------------------------------------

  /** The token, if this tab has one. Session storage: it dies with the tab. */
  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch {
      return "";
    }
  }

  function setToken(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Storage refused (a private window): the token lasts until the page closes.
    }
  }

  /** A token given as `#token=…` never reaches the server (fragments are not
   *  sent): keep it for this tab, then take it out of the address bar and the
   *  history, so that copying the URL does not share it. */
  function takeTokenFromFragment() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    if (!fragment.has("token")) return;
    setToken(fragment.get("token").trim());
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(history.state, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }

  /** Wires the "Access token" box; `onChange` runs after a token is set or forgotten. */
  function setUpTokenForm(onChange) {
    const form = byId("token-form");
    const input = byId("token-input");
    const status = byId("token-status");
    const describe = () => {
      status.textContent = token()
        ? "A token is set for this tab. It is sent with every request of this page."
        : "No token set. Kept in this tab only when you add one; you can also open a page with #token=… at the end of its address.";
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      setToken(input.value.trim());
      input.value = "";
      describe();
      onChange();
    });
    byId("token-forget").addEventListener("click", () => {
      setToken("");
      describe();
      onChange();
    });
    describe();
  }

  /** Opens the token box and says why it is needed. */
  function askForToken() {
    const box = byId("token-box");
    box.open = true;
  }

  // --- API calls ----------------------------------------------------------

  /** GET `path` with the bearer token; resolves to `{status, body}` where
   *  `body` is the parsed JSON (a problem for errors), or rejects when the
   *  server cannot be reached. */
  async function getJson(path, signal) {
    const headers = { Accept: "application/json" };
    const bearer = token();
    if (bearer) headers.Authorization = "Bearer " + bearer;
    const response = await fetch(path, { headers, cache: "no-store", signal });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null; // not JSON: a proxy's error page, say
    }
    return { status: response.status, body };
  }

  /** The problem's `detail`, or a sentence about the status. */
  function problemDetail(answer) {
    const detail = answer.body && typeof answer.body.detail === "string" ? answer.body.detail : "";
    return detail || `The server answered ${answer.status}.`;
  }

  // --- The page's notice and state marker ----------------------------------

  /** Shows the page's notice: `text` is a string, or an array of strings and
   *  `{code: "…"}` parts (ids and commands, never broken across lines);
   *  `kind` is "info" or "error"; `code`, if given, is shown as a command to
   *  copy (where the page has room for one). */
  function showNotice(title, text, kind, code) {
    const notice = byId("notice");
    byId("notice-title").textContent = title;
    const parts = (Array.isArray(text) ? text : [text]).map((part) => {
      if (typeof part === "string") return part;
      const element = document.createElement("code");
      element.textContent = part.code;
      return element;
    });
    byId("notice-text").replaceChildren(...parts);
    const block = byId("notice-code");
    if (block) {
      block.hidden = !code;
      block.firstElementChild.textContent = code || "";
    }
    notice.dataset.kind = kind || "info";
    notice.hidden = false;
  }

  function hideNotice() {
    byId("notice").hidden = true;
  }

  /** What to do about a 401 or 403, for a page that needs `scope`. */
  function showAccessProblem(answer, scope, what) {
    const denied = answer.status === 403;
    const title = denied ? "This token cannot see " + what : "A token is needed to see " + what;
    const action = denied
      ? `Paste a token with the “${scope}” scope for ${what} in “Access token” below.`
      : token()
        ? `The token was refused (expired or not valid here). Paste a token with the “${scope}” scope for ${what} in “Access token” below.`
        : `Paste a token with the “${scope}” scope for ${what} in “Access token” below, or open this page with #token=… at the end of its address.`;
    showNotice(title, `${action} The server said: ${problemDetail(answer)}`, "error");
    askForToken();
  }

  const STATE_LABELS = {
    connecting: "Connecting",
    live: "Live",
    reconnecting: "Reconnecting",
    offline: "Offline",
  };

  /** Sets the marker to one of connecting, live, reconnecting, offline; `label`
   *  overrides the words (for "No access", still shown as offline). */
  function setState(state, label) {
    const marker = byId("state");
    const text = label || STATE_LABELS[state];
    marker.hidden = false;
    if (marker.dataset.state === state && byId("state-label").textContent === text) return;
    marker.dataset.state = state;
    byId("state-label").textContent = text;
  }

  // --- Recent vehicles ------------------------------------------------------

  function recentVehicles() {
    try {
      const list = JSON.parse(localStorage.getItem(RECENT_KEY) || "[]");
      return Array.isArray(list) ? list.filter((id) => isVehicleId(id)) : [];
    } catch {
      return [];
    }
  }

  function rememberVehicle(id) {
    const list = [id, ...recentVehicles().filter((other) => other !== id)].slice(0, RECENT_MAX);
    try {
      localStorage.setItem(RECENT_KEY, JSON.stringify(list));
    } catch {
      // Storage refused: nothing is remembered, the page works the same.
    }
  }

  function isVehicleId(id) {
    return typeof id === "string" && VEHICLE_ID.test(id) && !/^\.+$/.test(id);
  }

  function vehicleUrl(id) {
    return "/vehicles/" + encodeURIComponent(id);
  }

  // --- Formatting -----------------------------------------------------------

  const UNITS = { celsius: "°C", fahrenheit: "°F", kelvin: "K", percent: "%" };

  function formatUnit(unit) {
    return UNITS[unit] || unit || "";
  }

  /** One decimal below 1000, none above: a glance, not a measurement. */
  function formatValue(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return "–";
    const text = value.toFixed(Math.abs(value) >= 1000 ? 0 : 1);
    return /^-0(\.0)?$/.test(text) ? text.slice(1) : text;
  }

  const ACRONYMS = new Set(["rpm", "vin", "gps", "soc", "obd"]);

  /** `engine_temperature` → `Engine temperature`, `engine_rpm` → `Engine RPM`. */
  function signalLabel(name) {
    const words = name
      .split(/[_.]+/)
      .filter(Boolean)
      .map((word) => (ACRONYMS.has(word.toLowerCase()) ? word.toUpperCase() : word))
      .join(" ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  /** A duration in the largest whole unit: `12 s`, `4 min`, `3 h`, `2 d`. */
  function formatAge(ms) {
    const seconds = Math.max(0, Math.floor(ms / 1000));
    if (seconds < 60) return `${seconds} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
    if (seconds < 48 * 3600) return `${Math.floor(seconds / 3600)} h`;
    return `${Math.floor(seconds / 86400)} d`;
  }

  return {
    VEHICLE_ID_RULE,
    byId,
    token,
    takeTokenFromFragment,
    setUpTokenForm,
    getJson,
    problemDetail,
    showNotice,
    hideNotice,
    showAccessProblem,
    setState,
    recentVehicles,
    rememberVehicle,
    isVehicleId,
    vehicleUrl,
    formatUnit,
    formatValue,
    signalLabel,
    formatAge,
  };
})();
