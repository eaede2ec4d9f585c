// Live updates on the dispatcher page: reads the server-sent events feed (/api/v1/feed/events) with fetch, so a
// token in sessionStorage can travel in the Authorization header (EventSource cannot send one), and updates the
// state of each task row in place; a replanned day reloads the page. Reconnects with Last-Event-ID.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("live-config").textContent);
  const status = document.getElementById("live");
  let lastEventId = null;

  function stateLabel(task) {
    const template = config.states[task.state] || task.state;
    return template.replace("{skip_reason}", task.skip_reason || "");
  }

  function apply(event) {
    const data = JSON.parse(event.data);
    if (event.type === "plan") {
      if (data.day === config.day) window.location.reload();
      return;
    }
    const task = data.task;
    if (!task) return;
    const row = document.getElementById("task-" + task.id);
    // A move or a cancel changes a route's order, loads and trips to the site: the server draws them anew.
    if ((data.action === "moved" || task.state === "cancelled") && (row || task.day === config.day)) {
      window.location.reload();
      return;
    }
    if (!row) {
      if (task.day === config.day) window.location.reload(); // a task added or moved onto this day
      return;
    }
    if (task.day !== config.day) { row.remove(); return; } // moved away
    const cell = row.querySelector("td.state");
    cell.className = "state state-" + task.state;
    cell.textContent = stateLabel(task);
    row.dataset.state = task.state;
  }

  function parse(block) {
    const event = { type: "message", data: "", id: null };
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event.type = value;
      else if (field === "data") event.data += (event.data ? "\n" : "") + value;
      else if (field === "id") event.id = value;
    }
    return event;
  }

  async function listen() {
    const headers = { Accept: "text/event-stream" };
    const token = sessionStorage.getItem("flurfunk.token");
    if (token) headers.Authorization = "Bearer " + token;
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    try {
      const response = await fetch("/api/v1/feed/events", { headers, cache: "no-store" });
      if (!response.ok) throw new Error(String(response.status));
      status.dataset.connected = "true";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event.id) lastEventId = event.id;
          if (event.data) apply(event);
        }
      }
    } catch (error) {
      status.dataset.connected = "false";
    }
    setTimeout(listen, 2000);
  }

  listen();
})();
