// The car view: a tile per signal of one vehicle, kept live. At `/` with no
// vehicle, it is a chooser instead.
//
// It uses the public API only:
//   GET /v1/signals                         names, units and descriptions
//   GET /v1/vehicles/{id}/stream            EventSource: `snapshot` {"signals": {name: summary}},
//                                           then `update` {"signals": {…}, "skipped": n}, `shutdown`
//   GET /v1/vehicles/{id}                   the same summaries ({"signals": …}), polled
//                                           once a second while there is no stream; 404 until
//                                           the vehicle sends its first reading
//   GET /v1/vehicles/{id}/signals/{signal}  a signal's window, newest first, for its sparkline
//   GET /v1/vehicles?limit=                 (the chooser) vehicles the server has seen
//
// The stream is preferred. When it fails (a server without it answers 404, a
// restarting one does not answer), the page polls the summary and tries the
// stream again, backing off; the marker changes only when data stops arriving.
"use strict";

(function () {
  const T = window.Tributary;
  const byId = T.byId;

  /** A tile whose newest reading is older than this says how old it is. */
  const STALE_AFTER_MS = 5000;
  const POLL_INTERVAL_MS = 1000;
  /** Polling that keeps failing slows to this, so a phone without network rests. */
  const POLL_INTERVAL_OFFLINE_MS = 5000;
  /** After the stream fails it is tried again after this long, doubling up to the max. */
  const STREAM_RETRY_FIRST_MS = 1000;
  const STREAM_RETRY_MAX_MS = 30000;
  /** Failing this long, the marker says "offline" instead of "reconnecting". */
  const OFFLINE_AFTER_MS = 10000;
  /** Sparkline windows fetched per second at most, however fast updates come. */
  const WINDOW_FETCHES_PER_SECOND = 4;

  document.body.dataset.staleAfterMs = String(STALE_AFTER_MS);
  T.takeTokenFromFragment();

  const vehicle = vehicleFromAddress();
  /** name → {unit, description, order} from the catalog; empty until it loads. */
  let catalog = new Map();
  /** name → {element, summary, readings} */
  const tiles = new Map();
  /** Which notice is up: "waiting", "access", "invalid" or null. */
  let noticeKind = null;

  /** Runs last, once every declaration below is in place. */
  function start() {
    setUpPicker();
    T.setUpTokenForm(() => (vehicle ? connect() : showChooser()));
    if (vehicle === null) {
      showChooser();
    } else if (!T.isVehicleId(vehicle)) {
      showInvalid(`“${vehicle}” is not a vehicle id: a vehicle id is ${T.VEHICLE_ID_RULE}. Type another above.`);
    } else {
      document.title = `${vehicle} · Tributary`;
      byId("title").textContent = vehicle;
      T.rememberVehicle(vehicle);
      loadCatalog();
      connect();
      setInterval(tick, 1000);
    }
  }

  /** The vehicle of `/vehicles/{id}`, or null at `/`. */
  function vehicleFromAddress() {
    const match = /^\/vehicles\/([^/]+)$/.exec(location.pathname);
    if (!match) return null;
    try {
      return decodeURIComponent(match[1]);
    } catch {
      return match[1];
    }
  }

  // --- The picker and the chooser -------------------------------------------

  function setUpPicker() {
    const form = byId("picker");
    const input = byId("vehicle-input");
    const hint = byId("vehicle-hint");
    if (vehicle) input.value = vehicle;
    const datalist = byId("recent-ids");
    for (const id of T.recentVehicles()) {
      const option = document.createElement("option");
      option.value = id;
      datalist.append(option);
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const id = input.value.trim();
      if (!T.isVehicleId(id)) {
        hint.textContent = id
          ? `“${id}” is not a vehicle id: use ${T.VEHICLE_ID_RULE}.`
          : "Type a vehicle id first.";
        hint.hidden = false;
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      location.assign(T.vehicleUrl(id));
    });
    input.addEventListener("input", () => {
      input.removeAttribute("aria-invalid");
      hint.hidden = true;
    });
  }

  /** `/`: the vehicles of this device, and those the server saw last. */
  async function showChooser() {
    const named = new URLSearchParams(location.search).get("vehicle");
    if (named && T.isVehicleId(named.trim())) {
      location.replace(T.vehicleUrl(named.trim()));
      return;
    }
    fillChoices("recent", T.recentVehicles());
    T.showNotice(
      "Which car?",
      [
        "Type a vehicle id above, or pick one below. The cars of ",
        { code: "tributary simulate" },
        " are ",
        { code: "sim-001" },
        ", ",
        { code: "sim-002" },
        " and so on; the seed API writes to ",
        { code: "default" },
        ".",
      ],
      "info",
    );
    // The list needs the fleet scope where tokens are checked: without it there
    // is simply no second list.
    try {
      const answer = await T.getJson("/v1/vehicles?limit=12");
      if (answer.status === 200 && answer.body && Array.isArray(answer.body.vehicles)) {
        const newest = [...answer.body.vehicles].sort(byLastSeen).map((v) => v.vehicle_id);
        fillChoices("seen", newest.filter((id) => T.isVehicleId(id)));
      }
    } catch {
      // No server: the recent list is all there is.
    }
  }

  function byLastSeen(a, b) {
    return (Date.parse(b.last_seen) || 0) - (Date.parse(a.last_seen) || 0);
  }

  function fillChoices(listId, ids) {
    const nav = byId(listId);
    const list = nav.querySelector("ul");
    list.replaceChildren();
    for (const id of ids) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = T.vehicleUrl(id);
      link.textContent = id;
      item.append(link);
      list.append(item);
    }
    nav.hidden = ids.length === 0;
  }

  // --- Notices ---------------------------------------------------------------

  /** No vehicle to follow: the notice says why, and the marker goes (there is no connection to speak of). */
  function showInvalid(text) {
    noticeKind = "invalid";
    byId("state").hidden = true;
    T.showNotice("Not a vehicle id", text, "error");
  }

  function showWaiting(waiting) {
    if (waiting && noticeKind === null) {
      noticeKind = "waiting";
      const origin = location.origin;
      T.showNotice(
        `Waiting for ${vehicle}`,
        `${vehicle} has not sent a reading yet (or none within the retention period). Its signals appear here as soon as it does. To send one by hand:`,
        "info",
        `curl -X POST ${origin}/v1/vehicles/${vehicle}/readings \\\n  -d '{"engine_temperature": 90.5}'`,
      );
    } else if (!waiting && noticeKind === "waiting") {
      noticeKind = null;
      T.hideNotice();
    }
  }

  // --- The catalog -------------------------------------------------------------

  async function loadCatalog() {
    let answer;
    try {
      answer = await T.getJson("/v1/signals");
    } catch {
      return; // labels come from the names until a reload
    }
    if (answer.status !== 200 || !answer.body || !Array.isArray(answer.body.signals)) return;
    catalog = new Map(
      answer.body.signals.map((spec, order) => [spec.name, { unit: spec.unit, description: spec.description, order }]),
    );
    for (const [name, tile] of tiles) {
      labelTile(tile, name);
      placeTile(tile.element, name);
    }
  }

  // --- The connection: the stream, else polling --------------------------------

  const link = {
    /** The EventSource being tried or used. */
    source: null,
    /** Whether `source` delivered its snapshot: from then on it is the data's source. */
    streaming: false,
    streamRetryMs: STREAM_RETRY_FIRST_MS,
    streamTimer: 0,
    polling: false,
    pollTimer: 0,
    /** Bumped when polling stops, so an answer already on its way is ignored. */
    pollGeneration: 0,
    everLive: false,
    failingSince: null,
  };

  function connect() {
    disconnect();
    link.failingSince = null;
    link.streamRetryMs = STREAM_RETRY_FIRST_MS;
    if (noticeKind === "access") {
      noticeKind = null;
      T.hideNotice();
    }
    T.setState(link.everLive ? "reconnecting" : "connecting");
    openStream();
  }

  function disconnect() {
    closeStream();
    clearTimeout(link.streamTimer);
    stopPolling();
  }

  function streamUrl() {
    const url = `/v1/vehicles/${encodeURIComponent(vehicle)}/stream`;
    const token = T.token();
    // EventSource cannot set headers: the token goes in the query instead.
    return token ? `${url}?access_token=${encodeURIComponent(token)}` : url;
  }

  function openStream() {
    clearTimeout(link.streamTimer);
    const source = new EventSource(streamUrl());
    link.source = source;
    link.streaming = false;
    source.addEventListener("snapshot", (event) => {
      if (link.source !== source) return;
      const data = parseEvent(event);
      if (!data) return;
      link.streaming = true;
      link.streamRetryMs = STREAM_RETRY_FIRST_MS;
      stopPolling();
      document.body.dataset.transport = "stream";
      applySummaries(signalsOf(data), true);
      healthy();
    });
    source.addEventListener("update", (event) => {
      if (link.source !== source || !link.streaming) return;
      const data = parseEvent(event);
      if (!data) return;
      applySummaries(signalsOf(data), false);
      healthy();
    });
    // The server is stopping: a restarted one will be back shortly.
    source.addEventListener("shutdown", () => link.source === source && streamFailed());
    // EventSource says nothing of why: a 404 (no stream on this server), a 401,
    // or no server at all look the same. Polling finds out, and carries on.
    source.addEventListener("error", () => link.source === source && streamFailed());
  }

  /** An event's summaries by signal: `{"signals": {…}}`, or (leniently) the
   *  bare map; `skipped` needs nothing done, as summaries are state, not history. */
  function signalsOf(data) {
    return data.signals && typeof data.signals === "object" ? data.signals : data;
  }

  function parseEvent(event) {
    try {
      const data = JSON.parse(event.data);
      return data && typeof data === "object" ? data : null;
    } catch {
      return null;
    }
  }

  function closeStream() {
    if (link.source) link.source.close();
    link.source = null;
    link.streaming = false;
  }

  /** Falls back to polling, and tries the stream again later. The marker is
   *  left to polling: it changes only if data stops arriving. */
  function streamFailed() {
    closeStream();
    startPolling();
    clearTimeout(link.streamTimer);
    link.streamTimer = setTimeout(openStream, link.streamRetryMs);
    link.streamRetryMs = Math.min(link.streamRetryMs * 2, STREAM_RETRY_MAX_MS);
  }

  function startPolling() {
    if (link.polling) return;
    link.polling = true;
    document.body.dataset.transport = "poll";
    poll(link.pollGeneration);
  }

  function stopPolling() {
    link.polling = false;
    link.pollGeneration += 1;
    clearTimeout(link.pollTimer);
  }

  async function poll(generation) {
    let answer = null;
    try {
      answer = await T.getJson(`/v1/vehicles/${encodeURIComponent(vehicle)}`);
    } catch {
      // Unreachable: the server restarts, or the phone lost its network.
    }
    if (generation !== link.pollGeneration) return;
    const status = answer ? answer.status : 0;
    if (status === 200 && answer.body) {
      applySummaries(answer.body.signals || {}, true);
      healthy();
    } else if (status === 404) {
      applySummaries({}, true); // nothing sent yet: waiting is the live state
      healthy();
    } else if (status === 401 || status === 403) {
      accessRefused(answer);
      return;
    } else if (status === 422) {
      disconnect();
      showInvalid(T.problemDetail(answer));
      return;
    } else {
      unhealthy(answer ? T.problemDetail(answer) : "The server cannot be reached.");
    }
    const failing = link.failingSince !== null && Date.now() - link.failingSince >= OFFLINE_AFTER_MS;
    link.pollTimer = setTimeout(() => poll(generation), failing ? POLL_INTERVAL_OFFLINE_MS : POLL_INTERVAL_MS);
  }

  function accessRefused(answer) {
    disconnect();
    noticeKind = "access";
    T.setState("offline", "No access");
    T.showAccessProblem(answer, "read", `vehicle ${vehicle}`);
  }

  function healthy() {
    link.failingSince = null;
    link.everLive = true;
    byId("state").removeAttribute("title");
    T.setState("live");
  }

  function unhealthy(reason) {
    const now = Date.now();
    if (link.failingSince === null) link.failingSince = now;
    const offline = !navigator.onLine || now - link.failingSince >= OFFLINE_AFTER_MS;
    T.setState(offline ? "offline" : link.everLive ? "reconnecting" : "connecting");
    byId("state").title = reason;
  }

  window.addEventListener("online", () => {
    if (link.polling) {
      clearTimeout(link.pollTimer);
      poll(link.pollGeneration);
    }
  });
  window.addEventListener("offline", () => {
    if (link.polling || link.source) unhealthy("This device is offline.");
  });

  // --- Tiles --------------------------------------------------------------------

  /** Applies summaries by signal name; `complete` says they are all the
   *  vehicle's signals (a snapshot or a poll), so tiles not among them go. */
  function applySummaries(signals, complete) {
    if (complete) {
      for (const name of [...tiles.keys()]) {
        if (!Object.hasOwn(signals, name)) {
          tiles.get(name).element.remove();
          tiles.delete(name);
        }
      }
    }
    for (const [name, summary] of Object.entries(signals)) {
      if (summary && typeof summary === "object") updateTile(name, summary);
    }
    showWaiting(tiles.size === 0);
  }

  function updateTile(name, summary) {
    let tile = tiles.get(name);
    if (!tile) {
      tile = addTile(name);
      tiles.set(name, tile);
    }
    const previous = tile.summary;
    // An update may carry fewer fields than a snapshot: keep the others.
    tile.summary = { ...previous, ...summary };
    renderTile(tile);
    const changed =
      !previous ||
      previous.updated_at !== tile.summary.updated_at ||
      previous.total !== tile.summary.total ||
      previous.count !== tile.summary.count ||
      previous.current !== tile.summary.current;
    if (changed) windowNeeded(name);
  }

  let tileCount = 0;

  function addTile(name) {
    const element = byId("tile-template").content.firstElementChild.cloneNode(true);
    tileCount += 1;
    const heading = element.querySelector(".name");
    heading.id = `tile-name-${tileCount}`;
    element.setAttribute("aria-labelledby", heading.id);
    element.dataset.signal = name;
    const tile = { element, summary: null, readings: null };
    labelTile(tile, name);
    placeTile(element, name);
    return tile;
  }

  function labelTile(tile, name) {
    const spec = catalog.get(name);
    tile.element.querySelector(".name").textContent = T.signalLabel(name);
    if (spec && spec.description) tile.element.querySelector(".name").title = spec.description;
  }

  /** Catalog order, then signals the catalog does not know, by name. */
  function sortKey(name) {
    const spec = catalog.get(name);
    return [spec ? spec.order : Number.MAX_SAFE_INTEGER, name];
  }

  function placeTile(element, name) {
    const [order, own] = sortKey(name);
    const container = byId("tiles");
    const next = [...container.children].find((other) => {
      if (other === element) return false;
      const [otherOrder, otherName] = sortKey(other.dataset.signal);
      return otherOrder > order || (otherOrder === order && otherName > own);
    });
    container.insertBefore(element, next || null);
  }

  function renderTile(tile) {
    const { element, summary } = tile;
    const unit = T.formatUnit(summary.unit || (catalog.get(element.dataset.signal) || {}).unit);
    element.querySelector(".value").textContent = T.formatValue(summary.current);
    element.querySelector(".unit").textContent = unit;
    element.querySelector(".average").textContent = T.formatValue(summary.average);
    element.querySelector(".min").textContent = T.formatValue(summary.min);
    element.querySelector(".max").textContent = T.formatValue(summary.max);
    showAge(tile, Date.now());
  }

  /** Says how old the newest reading is once it is older than STALE_AFTER_MS,
   *  so a stalled sensor never looks live. */
  function showAge(tile, now) {
    const updatedAt = Date.parse(tile.summary && tile.summary.updated_at);
    const age = now - updatedAt;
    const stale = Number.isFinite(age) && age > STALE_AFTER_MS;
    const label = tile.element.querySelector(".age");
    tile.element.dataset.stale = String(stale);
    label.hidden = !stale;
    if (stale) {
      label.lastChild.textContent = `${T.formatAge(age)} ago`;
    }
  }

  function tick() {
    const now = Date.now();
    for (const tile of tiles.values()) showAge(tile, now);
  }

  // --- Sparklines: windows fetched when their signal changes, a few a second ------

  const windows = {
    /** Signals whose window changed since it was last fetched. */
    wanted: new Set(),
    inFlight: new Set(),
    /** When the fetches of the last second started. */
    recent: [],
    timer: 0,
  };

  function windowNeeded(name) {
    windows.wanted.add(name);
    fetchWindows();
  }

  function fetchWindows() {
    if (windows.timer) return;
    for (const name of windows.wanted) {
      if (windows.inFlight.has(name)) continue;
      const now = performance.now();
      while (windows.recent.length && now - windows.recent[0] >= 1000) windows.recent.shift();
      if (windows.recent.length >= WINDOW_FETCHES_PER_SECOND) {
        windows.timer = setTimeout(() => {
          windows.timer = 0;
          fetchWindows();
        }, 1000 - (now - windows.recent[0]));
        return;
      }
      windows.recent.push(now);
      windows.wanted.delete(name);
      windows.inFlight.add(name);
      fetchWindow(name).finally(() => {
        windows.inFlight.delete(name);
        if (windows.wanted.size) fetchWindows();
      });
    }
  }

  async function fetchWindow(name) {
    let answer;
    try {
      answer = await T.getJson(`/v1/vehicles/${encodeURIComponent(vehicle)}/signals/${encodeURIComponent(name)}`);
    } catch {
      return; // the connection's own requests say whether the server is there
    }
    const tile = tiles.get(name);
    if (!tile || answer.status !== 200 || !answer.body || !Array.isArray(answer.body.readings)) return;
    tile.readings = answer.body.readings;
    drawSparkline(tile);
  }

  /** The window as a line, oldest on the left; readings are evenly spaced, so
   *  a burst and a slow trickle take the same width. */
  function drawSparkline(tile) {
    const svg = tile.element.querySelector(".spark");
    const values = tile.readings
      .map((reading) => reading.value)
      .filter((value) => typeof value === "number" && Number.isFinite(value))
      .reverse();
    const [width, height, pad] = [120, 40, 4];
    const low = Math.min(...values);
    const high = Math.max(...values);
    const x = (i) => (values.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (values.length - 1));
    const y = (v) => (high === low ? height / 2 : pad + (height - 2 * pad) * (1 - (v - low) / (high - low)));
    const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    svg.querySelector(".line").setAttribute("points", points.join(" "));
    svg.querySelector(".area").setAttribute(
      "d",
      points.length > 1 ? `M${x(0).toFixed(1)},${height} L${points.join(" L")} L${x(values.length - 1).toFixed(1)},${height} Z` : "",
    );
    const last = svg.querySelector(".last");
    if (values.length) {
      last.setAttribute("cx", x(values.length - 1).toFixed(1));
      last.setAttribute("cy", y(values[values.length - 1]).toFixed(1));
    }
    svg.dataset.points = String(values.length);
    const unit = tile.element.querySelector(".unit").textContent;
    svg.querySelector("title").textContent = values.length
      ? `The last ${values.length} readings, from ${T.formatValue(low)} to ${T.formatValue(high)} ${unit}`
      : "No readings";
  }

  start();
})();
