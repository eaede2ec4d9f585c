// The crew page: log in, pick crew and day, see the ordered route as a list (first) and on a map (a bonus),
// and start, finish or skip tasks. Plain JavaScript, no build step; the token lives in sessionStorage only.
"use strict";

const config = JSON.parse(document.getElementById("config").textContent);
const TOKEN_KEY = "flurfunk.token";
const CREW_KEY = "flurfunk.crew";
const $ = (id) => document.getElementById(id);

function t(key, values = {}) {
  const template = config.texts[key] || key;
  return template.replace(/\{(\w+)[^}]*\}/g, (_, name) => (name in values ? String(values[name]) : ""));
}

function berlinToday() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Berlin" }).format(new Date());
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path, options = {}) {
  const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
  if (token()) headers.Authorization = "Bearer " + token();
  if (options.body) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers }));
  } catch (error) {
    throw new Error(t("page.crew.offline"));
  }
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin();
    throw new Error(t("page.crew.login_failed"));
  }
  const body = (response.headers.get("content-type") || "").includes("json") ? await response.json() : null;
  if (!response.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText;
    throw new Error(detail);
  }
  return body;
}

function showLogin() {
  $("login").hidden = false;
  $("crew").hidden = true;
  $("logout").hidden = true;
}

function showCrew() {
  $("login").hidden = true;
  $("crew").hidden = false;
  $("logout").hidden = false;
}

// -- the list ----------------------------------------------------------------------------------------------------

function ordered(tasks, routes, crew) {
  const position = new Map();
  for (const route of routes.filter((r) => r.crew === crew)) {
    route.stops.forEach((stop, index) => position.set(route.kind + "|" + stop, index));
  }
  const rank = (task) => (position.has(task.kind + "|" + task.asset) ? position.get(task.kind + "|" + task.asset) : 1e6);
  return tasks.slice().sort((a, b) => rank(a) - rank(b) || b.priority - a.priority || a.asset.localeCompare(b.asset));
}

// The crew's day in driving order: each route's stops (its tasks) with the trips to the disposal site or hydrant
// between them, as the planner (or a dispatcher's change) put them; tasks on no route come last, most urgent first.
function sequence(tasks, routes, crew) {
  const byStop = new Map(tasks.map((task) => [task.kind + "|" + task.asset, task]));
  const placed = new Set();
  const entries = [];
  for (const route of routes.filter((r) => r.crew === crew)) {
    for (const visit of route.sequence || []) {
      if (visit.type === "reload") {
        entries.push({ reload: visit });
        continue;
      }
      const task = byStop.get(route.kind + "|" + visit.asset);
      if (task && !placed.has(task.id)) {
        placed.add(task.id);
        entries.push({ task, load: visit.load_l, at: visit.at });
      }
    }
  }
  for (const task of ordered(tasks.filter((x) => !placed.has(x.id)), routes, crew)) entries.push({ task });
  return entries;
}

function litres(value) {
  return t("route.load", { load: Number(value).toLocaleString(config.language, { maximumFractionDigits: 0 }) });
}

function renderReload(visit) {
  const item = document.createElement("li");
  item.className = "reload";
  item.dataset.site = visit.site;
  const label = document.createElement("span");
  label.textContent = visit.label;
  item.append(label);
  if (visit.load_l != null) {
    const load = document.createElement("span");
    load.className = "load";
    load.textContent = litres(visit.load_l);
    item.append(load);
  }
  return item;
}

function button(action, label, handler) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = action;
  element.dataset.action = action;
  element.textContent = label;
  element.addEventListener("click", handler);
  return element;
}

function renderTask(task, number, load, at) {
  const item = document.createElement("li");
  item.className = `task kind-${task.kind} state-${task.state}`;
  item.id = "task-" + task.id;
  item.dataset.taskId = task.id;
  item.dataset.state = task.state;
  const heading = document.createElement("h2");
  const stop = document.createElement("span");
  stop.className = "stop";
  stop.textContent = String(number);
  const name = document.createElement("span");
  name.textContent = `${t("task.kind." + task.kind)}: ${task.asset}` + (task.village ? ` (${task.village})` : "");
  heading.append(stop, name);
  if (at) {
    const time = document.createElement("span");
    time.className = "at";
    time.textContent = t("route.at", { time: at });
    heading.append(time);
  }
  if (load != null) {
    const amount = document.createElement("span");
    amount.className = "load";
    amount.textContent = litres(load);
    heading.append(amount);
  }
  const reason = document.createElement("p");
  reason.className = "reason";
  reason.textContent = task.reason;
  const state = document.createElement("p");
  state.className = "state";
  state.textContent = t("task.state." + task.state, { skip_reason: task.skip_reason || "" });
  item.append(heading, reason, state);

  const actions = document.createElement("div");
  actions.className = "actions";
  if (task.state === "planned" || task.state === "assigned") {
    actions.append(button("start", t("page.crew.start"), () => start(task)));
  }
  if (task.state === "in_progress") {
    actions.append(button("done", t("page.crew.done"), () => change(task, "done")));
  }
  if (task.state === "assigned" || task.state === "in_progress") {
    actions.append(button("skip", t("page.crew.skip"), () => askSkipReason(task, actions)));
  }
  if (actions.childElementCount) item.append(actions);
  return item;
}

function askSkipReason(task, actions) {
  if (actions.querySelector("input")) return;
  const input = document.createElement("input");
  input.placeholder = t("page.crew.skip_reason");
  input.setAttribute("aria-label", t("page.crew.skip_reason"));
  input.maxLength = 500;
  const confirm = button("skip-confirm", t("page.crew.skip"), () => {
    if (input.value.trim()) change(task, "skipped", input.value.trim());
    else input.focus();
  });
  actions.append(input, confirm);
  input.focus();
}

async function change(task, state, skipReason) {
  $("message").textContent = "";
  try {
    await api(`/api/v1/tasks/${encodeURIComponent(task.id)}`, {
      method: "PATCH",
      body: JSON.stringify({ state, skip_reason: skipReason || null }),
    });
  } catch (error) {
    $("message").textContent = t("page.crew.error", { detail: error.message });
  }
  await load();
}

async function start(task) {
  // The state machine goes planned -> assigned -> in_progress; a crew starting a planned task takes both steps.
  if (task.state === "planned") {
    try {
      await api(`/api/v1/tasks/${encodeURIComponent(task.id)}`, { method: "PATCH", body: JSON.stringify({ state: "assigned" }) });
    } catch (error) {
      $("message").textContent = t("page.crew.error", { detail: error.message });
      return load();
    }
  }
  await change(task, "in_progress");
}

// -- the map (a bonus: the list works without it) ------------------------------------------------------------------

let map = null;
let layer = null;

function drawMap(tasks, routes, crew) {
  if (!window.L) return;
  if (!map) {
    map = L.map("map", { zoomControl: true, attributionControl: true });
    if (config.tileUrl) {
      const tiles = L.tileLayer(config.tileUrl, { maxZoom: 19, attribution: "© OpenStreetMap" });
      tiles.on("tileerror", () => { $("map-note").hidden = false; });
      tiles.addTo(map);
    } else {
      $("map-note").hidden = false;
    }
    layer = L.layerGroup().addTo(map);
  }
  layer.clearLayers();
  const points = [];
  for (const route of routes.filter((r) => r.crew === crew)) {
    if (route.polyline.length) {
      L.polyline(route.polyline, { color: "#2f6b3f", weight: 4 }).addTo(layer);
      points.push(...route.polyline);
    }
  }
  const sites = new Map();
  for (const route of routes.filter((r) => r.crew === crew)) {
    for (const visit of route.sequence || []) if (visit.type === "reload") sites.set(visit.site, visit);
  }
  for (const visit of sites.values()) {
    L.circleMarker([visit.latitude, visit.longitude], { radius: 11, color: "#00568a", fillOpacity: 0.5 })
      .bindTooltip(visit.label)
      .addTo(layer);
  }
  tasks.forEach((task, index) => {
    if (task.latitude == null) return;
    const done = ["done", "skipped", "cancelled"].includes(task.state);
    L.circleMarker([task.latitude, task.longitude], { radius: 9, color: done ? "#6b756e" : "#b87400", fillOpacity: 0.8 })
      .bindTooltip(`${index + 1}. ${task.asset}`)
      .addTo(layer);
    points.push([task.latitude, task.longitude]);
  });
  if (points.length) map.fitBounds(points, { padding: [20, 20], maxZoom: 16 });
  else map.setView([50.27, 9.35], 11); // the Kinzig valley, between the six towns
}

// -- loading -------------------------------------------------------------------------------------------------------

// The crew's open alerts above the list: the server renders the section (escaped); a tap acknowledges one.
async function loadAlerts(crew) {
  const headers = { Accept: "text/html" };
  if (token()) headers.Authorization = "Bearer " + token();
  let response;
  try {
    response = await fetch(`/api/v1/alerts/crew-section?crew=${encodeURIComponent(crew)}&lang=${config.language}`, { headers });
  } catch (error) {
    return; // no alerts shown offline; the task list still works
  }
  if (!response.ok) return;
  $("alerts").innerHTML = await response.text();
  for (const ack of $("alerts").querySelectorAll("button[data-alert-id]")) {
    ack.addEventListener("click", async () => {
      ack.disabled = true;
      try {
        await api(`/api/v1/alerts/${encodeURIComponent(ack.dataset.alertId)}/acknowledge`, { method: "POST" });
      } catch (error) {
        $("message").textContent = error.message;
      }
      loadAlerts(crew);
    });
  }
}

async function load() {
  const day = $("day").value || berlinToday();
  let routes, tasks;
  try {
    [routes, tasks] = await Promise.all([
      api(`/api/v1/feed/routes?day=${day}&lang=${config.language}`),
      api(`/api/v1/feed/tasks?day=${day}`),
    ]);
  } catch (error) {
    $("message").textContent = error.message;
    return;
  }
  const crews = [...new Set([...routes.map((r) => r.crew), ...tasks.map((x) => x.crew)].filter(Boolean))].sort();
  const select = $("crew-select");
  const wanted = select.value || config.crew || sessionStorage.getItem(CREW_KEY) || crews[0] || "";
  select.replaceChildren(...crews.map((crew) => new Option(crew, crew)));
  if (wanted && !crews.includes(wanted)) select.append(new Option(wanted, wanted));
  select.value = wanted;
  const crew = select.value;
  sessionStorage.setItem(CREW_KEY, crew);
  $("title").textContent = t("page.crew.title", { crew });

  const entries = sequence(tasks.filter((task) => task.crew === crew), routes, crew);
  const mine = entries.filter((entry) => entry.task).map((entry) => entry.task);
  const crewRoutes = routes.filter((r) => r.crew === crew);
  const km = crewRoutes.reduce((sum, r) => sum + r.km, 0);
  $("summary").textContent = t("page.crew.stops", {
    count: mine.length,
    km: km.toLocaleString(config.language, { maximumFractionDigits: 1 }),
  });
  $("vehicles").replaceChildren(
    ...crewRoutes.flatMap((route) => [route.summary, route.late].filter(Boolean).map((line) => {
      const paragraph = document.createElement("p");
      paragraph.className = line === route.late ? "late" : "vehicle";
      paragraph.textContent = line;
      return paragraph;
    })),
  );
  loadAlerts(crew);
  let number = 0;
  $("tasks").replaceChildren(
    ...entries.map((entry) => (entry.reload ? renderReload(entry.reload) : renderTask(entry.task, ++number, entry.load, entry.at))),
  );
  $("empty").hidden = mine.length > 0;
  try {
    drawMap(mine, routes, crew);
  } catch (error) {
    $("map-note").hidden = false; // the map is a bonus; the list above already works
  }
}

// -- start ---------------------------------------------------------------------------------------------------------

for (const element of document.querySelectorAll("[data-text]")) element.textContent = t(element.dataset.text);
$("logout").textContent = t("page.crew.logout");
$("day").value = config.day || berlinToday();

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  $("login-error").textContent = "";
  try {
    const answer = await api("/api/v1/auth/login", {
      method: "POST",
      body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
    });
    sessionStorage.setItem(TOKEN_KEY, answer.token);
    showCrew();
    await load();
  } catch (error) {
    $("login-error").textContent = t("page.crew.login_failed");
  }
});

$("logout").addEventListener("click", async () => {
  try { await api("/api/v1/auth/logout", { method: "POST" }); } catch (error) { /* logged out locally anyway */ }
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin();
});

$("crew-select").addEventListener("change", load);
$("day").addEventListener("change", load);

if (token()) {
  showCrew();
  load();
} else {
  showLogin();
}
