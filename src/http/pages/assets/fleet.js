// The fleet view: the vehicles the server knows and when each was last seen,
// a page at a time, filtered by id prefix, each linking to its car view.
//
// It uses the public API only:
//   GET /v1/vehicles?limit=&cursor=&prefix=
//     {"vehicles": [{"vehicle_id": "…", "last_seen": "RFC 3339"}], "next_cursor": "…" | null}
//
// The cursor is opaque (on Redis, a SCAN cursor), so pages can only be walked
// forward: "Previous" goes back through the cursors that led here, which the
// history entry keeps. Within a page the newest come first; across pages there
// is no order. The page in view is fetched again every few seconds.
"use strict";

(function () {
  const T = window.Tributary;
  const byId = T.byId;

  const PAGE_SIZE = 20;
  const REFRESH_MS = 5000;
  /** Failing this long, the marker says "offline" instead of "reconnecting". */
  const OFFLINE_AFTER_MS = 10000;
  const PREFIX = /^[A-Za-z0-9._-]{0,64}$/;

  T.takeTokenFromFragment();

  /** What is in view: the filter, the page's cursor ("" for the first) and
   *  the cursors of the pages before it. */
  let view = readView();
  let nextCursor = null;
  /** Bumped by every load, so an answer that a newer load overtook is ignored. */
  let generation = 0;
  let refreshTimer = 0;
  let failingSince = null;
  let everLoaded = false;
  /** Said once the next page has loaded, and kept up until the person moves on. */
  let noteAfterLoad = null;
  let noteShown = false;

  const input = byId("prefix-input");
  input.value = view.prefix;
  byId("filter").addEventListener("submit", (event) => {
    event.preventDefault();
    const prefix = input.value.trim();
    if (!PREFIX.test(prefix)) {
      invalidPrefix(`“${prefix}” cannot start a vehicle id: use up to 64 letters, digits, “-”, “_” or “.”.`);
      return;
    }
    go({ prefix, cursor: "", previous: [] });
  });
  input.addEventListener("input", () => {
    input.removeAttribute("aria-invalid");
    byId("prefix-hint").hidden = true;
  });
  byId("next").addEventListener("click", () => {
    if (nextCursor) go({ prefix: view.prefix, cursor: nextCursor, previous: [...view.previous, view.cursor] });
  });
  byId("previous").addEventListener("click", () => {
    const previous = view.previous.slice(0, -1);
    go({ prefix: view.prefix, cursor: view.previous.length ? view.previous[view.previous.length - 1] : "", previous });
  });
  window.addEventListener("popstate", () => {
    view = readView();
    input.value = view.prefix;
    load();
  });
  T.setUpTokenForm(load);
  setInterval(tick, 1000);
  load();

  function readView() {
    const params = new URLSearchParams(location.search);
    const state = history.state;
    return {
      prefix: params.get("prefix") || "",
      cursor: params.get("cursor") || "",
      previous: state && Array.isArray(state.previous) ? state.previous : [],
    };
  }

  /** Shows another page, as a new history entry (so Back works as expected). */
  function go(next) {
    view = next;
    noteShown = false;
    const params = new URLSearchParams();
    if (view.prefix) params.set("prefix", view.prefix);
    if (view.cursor) params.set("cursor", view.cursor);
    const query = params.toString();
    history.pushState({ previous: view.previous }, "", "/fleet" + (query ? "?" + query : ""));
    load();
  }

  async function load() {
    clearTimeout(refreshTimer);
    generation += 1;
    const mine = generation;
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (view.cursor) params.set("cursor", view.cursor);
    if (view.prefix) params.set("prefix", view.prefix);
    let answer = null;
    try {
      answer = await T.getJson("/v1/vehicles?" + params);
    } catch {
      // Unreachable: said below.
    }
    if (mine !== generation) return;
    const status = answer ? answer.status : 0;
    if (status === 200 && answer.body && Array.isArray(answer.body.vehicles)) {
      render(answer.body);
      healthy();
    } else if (status === 401 || status === 403) {
      byId("list").hidden = true;
      noteShown = false;
      T.setState("offline", "No access");
      T.showAccessProblem(answer, "fleet", "the fleet");
      return; // until a token is given
    } else if (status === 404) {
      byId("list").hidden = true;
      noteShown = false;
      T.setState("offline", "Not available");
      T.showNotice(
        "This server does not list vehicles",
        `GET /v1/vehicles answered 404 (${T.problemDetail(answer)}) This Tributary is older than the fleet view; open a car by its id in the Car view instead.`,
        "error",
      );
      return;
    } else if ((status === 400 || status === 422) && view.cursor) {
      // A cursor the server no longer takes (the list changed under it, or an
      // edited address): start over rather than show nothing.
      const detail = T.problemDetail(answer);
      history.replaceState({ previous: [] }, "", "/fleet" + (view.prefix ? "?prefix=" + encodeURIComponent(view.prefix) : ""));
      view = { prefix: view.prefix, cursor: "", previous: [] };
      noteAfterLoad = `That page could not be shown (${detail}), so this is the first page.`;
      load();
      return;
    } else if (status === 400 || status === 422) {
      invalidPrefix(T.problemDetail(answer));
      healthy();
      return;
    } else {
      unhealthy(answer ? T.problemDetail(answer) : "The server cannot be reached.");
    }
    refreshTimer = setTimeout(load, REFRESH_MS);
  }

  function invalidPrefix(text) {
    const hint = byId("prefix-hint");
    hint.textContent = text;
    hint.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  function healthy() {
    failingSince = null;
    everLoaded = true;
    byId("state").removeAttribute("title");
    T.setState("live");
  }

  function unhealthy(reason) {
    const now = Date.now();
    if (failingSince === null) failingSince = now;
    const offline = !navigator.onLine || now - failingSince >= OFFLINE_AFTER_MS;
    T.setState(offline ? "offline" : everLoaded ? "reconnecting" : "connecting");
    byId("state").title = reason;
  }

  function render(body) {
    if (noteAfterLoad) {
      T.showNotice("Back to the first page", noteAfterLoad, "info");
      noteAfterLoad = null;
      noteShown = true;
    } else if (!noteShown) {
      T.hideNotice();
    }
    const vehicles = body.vehicles
      .filter((v) => v && typeof v.vehicle_id === "string")
      .sort((a, b) => (Date.parse(b.last_seen) || 0) - (Date.parse(a.last_seen) || 0));
    const rows = vehicles.map((v) => {
      const row = document.createElement("tr");
      const name = document.createElement("th");
      name.scope = "row";
      const link = document.createElement("a");
      link.href = T.vehicleUrl(v.vehicle_id);
      link.textContent = v.vehicle_id;
      name.append(link);
      const seen = document.createElement("td");
      const time = document.createElement("time");
      time.dateTime = v.last_seen;
      const at = new Date(v.last_seen);
      if (Number.isFinite(at.getTime())) time.title = at.toLocaleString();
      seen.append(time);
      row.append(name, seen);
      return row;
    });
    if (rows.length === 0) {
      const row = document.createElement("tr");
      const cell = document.createElement("td");
      cell.colSpan = 2;
      cell.className = "empty";
      // A cursor-paged scan may find nothing on one page and more on the next.
      cell.textContent = body.next_cursor
        ? "Nothing on this page; the next one may have more."
        : view.prefix
          ? `No vehicle id starts with “${view.prefix}”${view.cursor ? " beyond the pages before" : ""}.`
          : "No vehicles yet.";
      row.append(cell);
      rows.push(row);
    }
    byId("rows").replaceChildren(...rows);
    byId("list-caption").textContent = view.prefix ? `Vehicles whose id starts with “${view.prefix}”` : "All vehicles";
    nextCursor = typeof body.next_cursor === "string" && body.next_cursor ? body.next_cursor : null;
    byId("next").disabled = nextCursor === null;
    const previous = byId("previous");
    previous.disabled = !view.cursor;
    previous.textContent = view.cursor && view.previous.length === 0 ? "← First page" : "← Previous";
    byId("page-label").textContent = view.cursor && view.previous.length === 0 ? "" : `Page ${view.previous.length + 1}`;
    byId("list").hidden = false;
    tick();
  }

  function tick() {
    const now = Date.now();
    for (const time of byId("rows").querySelectorAll("time")) {
      const at = Date.parse(time.dateTime);
      time.textContent = Number.isFinite(at) ? `${T.formatAge(now - at)} ago` : "unknown";
    }
  }
})();
