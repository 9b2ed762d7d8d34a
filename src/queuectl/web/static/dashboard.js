// queuectl dashboard: refreshes the page from the JSON API every 2 s.
// Every value from the store reaches the page as text (textContent, setAttribute), never
// as HTML, so a command such as <script>...</script> shows as typed and runs nothing.
"use strict";

(() => {
  const REFRESH_MS = 2000;
  const PAGE_SIZE = 50;
  const RETRYABLE = new Set(["dead", "cancelled"]);
  const CANCELLABLE = new Set(["pending", "failed", "processing"]);
  const SVG = "http://www.w3.org/2000/svg";
  const tokenMeta = document.querySelector('meta[name="queuectl-token"]');
  const token = tokenMeta ? tokenMeta.content : null;

  // -- helpers -------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : String(child ?? ""));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function show(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "object") return JSON.stringify(value);
    if (typeof value === "boolean") return value ? "yes" : "no";
    return String(value);
  }

  function duration(seconds) {
    const whole = Math.max(0, Math.floor(seconds));
    const days = Math.floor(whole / 86400);
    const hours = Math.floor((whole % 86400) / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    const secs = whole % 60;
    if (days) return `${days}d ${hours}h`;
    if (hours) return `${hours}h ${minutes}m`;
    if (minutes) return `${minutes}m ${secs}s`;
    return `${secs}s`;
  }

  function secondsBetween(start, end) {
    return (Date.parse(end) - Date.parse(start)) / 1000;
  }

  function say(text, kind) {
    const box = document.getElementById("message");
    box.textContent = text;
    box.className = `message ${kind || "info"}`;
    box.hidden = false;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && token) headers.Authorization = `Bearer ${token}`;
    const options = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  function setLive(ok, reason) {
    const live = document.getElementById("live");
    live.textContent = ok ? "live" : "offline";
    live.title = ok ? "refreshed every 2 s" : reason;
    live.className = ok ? "live ok" : "live down";
  }

  function guardButton(button) {
    if (!token) {
      button.disabled = true;
      button.title = "needs the token";
    }
    return button;
  }

  function startLoop(refresh) {
    async function tick() {
      if (!document.hidden) {
        try {
          await refresh();
          setLive(true);
        } catch (error) {
          setLive(false, error.message);
        }
      }
      setTimeout(tick, REFRESH_MS);
    }
    tick();
  }

  // -- the dashboard -------------------------------------------------------------------

  const params = new URLSearchParams(location.search);
  const view = {
    state: params.get("state") || "",
    queue: params.get("queue") || "",
    offset: Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0),
  };
  let lastPage = null;

  function jobsPath() {
    const query = new URLSearchParams({ limit: PAGE_SIZE, offset: view.offset });
    if (view.state) query.set("state", view.state);
    if (view.queue) query.set("queue", view.queue);
    return `/api/jobs?${query}`;
  }

  function rememberView() {
    const query = new URLSearchParams();
    if (view.state) query.set("state", view.state);
    if (view.queue) query.set("queue", view.queue);
    if (view.offset) query.set("offset", view.offset);
    const text = query.toString();
    history.replaceState(null, "", text ? `?${text}` : location.pathname);
  }

  function renderCounts(status) {
    for (const node of document.querySelectorAll("[data-count]")) {
      node.textContent = String(status.jobs[node.dataset.count] ?? 0);
    }
    for (const card of document.querySelectorAll("[data-filter-state]")) {
      card.classList.toggle("active", card.dataset.filterState === view.state);
    }
    const dead = status.jobs.dead ?? 0;
    document.getElementById("dlq-count").textContent = `${dead} job${dead === 1 ? "" : "s"}`;
  }

  function jobLink(id) {
    return el("a", { href: `/jobs/${encodeURIComponent(id)}` }, id);
  }

  function renderWorkers(status) {
    const now = Date.parse(status.now);
    const rows = status.workers.map((worker) => el("tr", {},
      el("td", {}, el("code", {}, worker.id)),
      el("td", {}, worker.host),
      el("td", {}, String(worker.pid)),
      el("td", {}, duration((now - Date.parse(worker.started_at)) / 1000)),
      el("td", {}, worker.current_job_id ? jobLink(worker.current_job_id)
        : el("span", { class: "muted" }, "idle"))));
    if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: 5 }, "No active workers.")));
    document.querySelector("#workers tbody").replaceChildren(...rows);
    const count = status.workers.length;
    document.getElementById("worker-count").textContent = `${count} active`;
  }

  function renderQueues(queues) {
    const none = () => el("span", { class: "muted" }, "–");
    const rows = queues.map((queue) => el("tr", { "data-queue": queue.name },
      el("td", {}, queue.name),
      el("td", {}, String(queue.counts.pending)),
      el("td", {}, String(queue.counts.processing)),
      el("td", {}, queue.paused ? "paused" : none()),
      el("td", { "data-field": "limit" }, queue.max_running === null ? none() : String(queue.max_running)),
      el("td", { "data-field": "rate" }, queue.rate === null ? none() : queue.rate)));
    if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: 6 }, "No queues yet.")));
    document.querySelector("#queues tbody").replaceChildren(...rows);
  }

  function actionButton(action, id, label, danger) {
    return guardButton(el("button", {
      type: "button", "data-action": action, "data-id": id, class: danger ? "small danger" : "small",
    }, label));
  }

  function renderJobs(page) {
    const now = Date.parse(page.now);
    const rows = page.jobs.map((job) => {
      const actions = el("td", { class: "row-actions" });
      if (RETRYABLE.has(job.state)) actions.append(actionButton("retry", job.id, "Retry"));
      if (CANCELLABLE.has(job.state)) actions.append(actionButton("cancel", job.id, "Cancel", true));
      return el("tr", { "data-job-id": job.id },
        el("td", {}, jobLink(job.id)),
        el("td", {}, el("span", { class: `badge state-${job.state}` }, job.state)),
        el("td", {}, job.queue),
        el("td", {}, String(job.priority)),
        el("td", {}, `${job.attempts}/${job.max_retries}`),
        el("td", { title: job.updated_at }, `${duration((now - Date.parse(job.updated_at)) / 1000)} ago`),
        el("td", { class: "command", title: job.command }, el("code", {}, job.command)),
        actions);
    });
    if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: 8 }, "No jobs.")));
    document.querySelector("#jobs tbody").replaceChildren(...rows);
    lastPage = page;
    const first = page.jobs.length ? page.offset + 1 : 0;
    document.getElementById("page-info").textContent =
      page.jobs.length ? `${first}–${page.offset + page.jobs.length}` : "";
    document.querySelector('[data-page="newer"]').disabled = page.offset === 0;
    document.querySelector('[data-page="older"]').disabled = page.next_offset === null;
  }

  function renderChart(minutes) {
    const chart = document.getElementById("chart");
    const width = 600, height = 190, left = 34, right = 6, top = 8, bottom = 24;
    const plotWidth = width - left - right, plotHeight = height - top - bottom;
    const peak = Math.max(1, ...minutes.map((m) => m.completed + m.failed));
    const scale = niceCeiling(peak);
    const slot = plotWidth / Math.max(1, minutes.length);
    const y = (value) => top + plotHeight - (value / scale) * plotHeight;
    const nodes = [];
    for (const value of [0, scale / 2, scale]) {
      nodes.push(svg("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" }));
      nodes.push(svg("text", { x: left - 4, y: y(value) + 4, class: "axis", "text-anchor": "end" },
        Number.isInteger(value) ? String(value) : value.toFixed(1)));
    }
    minutes.forEach((minute, index) => {
      const x = left + index * slot + slot * 0.12;
      const barWidth = slot * 0.76;
      const group = svg("g", {});
      const when = new Date(minute.start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      group.append(svg("title", {}, `${when}: ${minute.completed} completed, ${minute.failed} failed`));
      group.append(svg("rect", { x, width: barWidth, y: top, height: plotHeight, class: "hover" }));
      const completedTop = y(minute.completed);
      if (minute.completed) {
        group.append(svg("rect", { x, width: barWidth, y: completedTop, height: y(0) - completedTop, class: "completed" }));
      }
      if (minute.failed) {
        const failedTop = y(minute.completed + minute.failed);
        group.append(svg("rect", { x, width: barWidth, y: failedTop, height: completedTop - failedTop, class: "failed" }));
      }
      nodes.push(group);
    });
    const labels = [[0, "-60m"], [Math.floor(minutes.length / 2), "-30m"], [minutes.length - 1, "now"]];
    for (const [index, label] of labels) {
      if (minutes.length > 1 || label === "now") {
        nodes.push(svg("text", { x: left + index * slot + slot / 2, y: height - 6, class: "axis", "text-anchor": "middle" },
          minutes.length === 60 ? label : new Date(minutes[index].start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
      }
    }
    chart.replaceChildren(...nodes);
    const completed = minutes.reduce((sum, m) => sum + m.completed, 0);
    const failed = minutes.reduce((sum, m) => sum + m.failed, 0);
    document.getElementById("chart-sum").textContent = `· ${completed} completed, ${failed} failed in the last hour`;
  }

  function niceCeiling(value) {
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  async function refreshIndex() {
    const [status, page, throughput, queues] = await Promise.all([
      api("GET", "/api/status"), api("GET", jobsPath()), api("GET", "/api/throughput?minutes=60"),
      api("GET", "/api/queues"),
    ]);
    renderCounts(status);
    renderWorkers(status);
    renderQueues(queues);
    renderJobs(page);
    renderChart(throughput.minutes);
  }

  async function loadQueueNames() {
    try {
      const queues = await api("GET", "/api/queues");
      document.getElementById("queue-names").replaceChildren(
        ...queues.map((queue) => el("option", { value: queue.name })));
    } catch (_) { /* the names only help typing */ }
  }

  function setUpIndex() {
    const filters = document.getElementById("filters");
    filters.elements.state.value = view.state;
    filters.elements.queue.value = view.queue;
    const apply = () => {
      const queue = filters.elements.queue;
      if (!queue.checkValidity()) { say("A queue name is letters, digits, '-', '_' or '.'.", "error"); return; }
      view.state = filters.elements.state.value;
      view.queue = queue.value.trim();
      view.offset = 0;
      rememberView();
      refreshIndex().catch((error) => say(error.message, "error"));
    };
    filters.addEventListener("change", apply);
    filters.addEventListener("submit", (event) => { event.preventDefault(); apply(); });
    for (const card of document.querySelectorAll("[data-filter-state]")) {
      card.addEventListener("click", (event) => {
        event.preventDefault();
        filters.elements.state.value = card.dataset.filterState;
        apply();
      });
    }
    document.querySelector('[data-page="newer"]').addEventListener("click", () => {
      view.offset = Math.max(0, view.offset - PAGE_SIZE);
      rememberView();
      refreshIndex().catch((error) => say(error.message, "error"));
    });
    document.querySelector('[data-page="older"]').addEventListener("click", () => {
      if (lastPage && lastPage.next_offset !== null) view.offset = lastPage.next_offset;
      rememberView();
      refreshIndex().catch((error) => say(error.message, "error"));
    });
    document.getElementById("enqueue").addEventListener("submit", enqueue);
    loadQueueNames();
    startLoop(refreshIndex);
  }

  async function enqueue(event) {
    event.preventDefault();
    const form = event.target;
    const job = { command: form.elements.command.value };
    if (form.elements.queue.value.trim()) job.queue = form.elements.queue.value.trim();
    if (form.elements.priority.value !== "") job.priority = Number(form.elements.priority.value);
    if (form.elements.max_retries.value !== "") job.max_retries = Number(form.elements.max_retries.value);
    try {
      const created = await api("POST", "/api/jobs", job);
      say(`Job ${created.id} enqueued.`, "ok");
      form.elements.command.value = "";
      await refreshIndex();
    } catch (error) {
      say(error.message, "error");
    }
  }

  // -- actions (both pages) ------------------------------------------------------------

  const ACTIONS = {
    async retry(id) {
      const job = await api("POST", `/api/jobs/${encodeURIComponent(id)}/retry`);
      return `Job ${job.id} moved back to pending (attempts reset).`;
    },
    async cancel(id) {
      const job = await api("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`);
      return `Job ${job.id} cancelled.`;
    },
    async "retry-all"() {
      const result = await api("POST", "/api/dlq/retry-all");
      return `${result.retried} dead job${result.retried === 1 ? "" : "s"} moved back to pending.`;
    },
    async purge() {
      const result = await api("POST", "/api/dlq/purge");
      return `${result.purged} dead job${result.purged === 1 ? "" : "s"} deleted.`;
    },
  };

  // Purging cannot be undone: it takes a second click within 4 s (no dialog box).
  function confirmed(button) {
    if (button.dataset.action !== "purge" || button.dataset.armed === "yes") return true;
    button.dataset.armed = "yes";
    const label = button.textContent;
    button.textContent = "Click again to purge";
    setTimeout(() => { button.dataset.armed = ""; button.textContent = label; }, 4000);
    return false;
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || button.disabled || !confirmed(button)) return;
    const action = ACTIONS[button.dataset.action];
    button.disabled = true;
    try {
      say(await action(button.dataset.id), "ok");
      await (document.body.dataset.page === "job" ? refreshJob() : refreshIndex());
    } catch (error) {
      say(error.message, "error");
    } finally {
      button.disabled = false;
      if (button.dataset.action === "purge") { button.dataset.armed = ""; button.textContent = "Purge the DLQ"; }
    }
  });

  // -- a job's page --------------------------------------------------------------------

  async function refreshJob() {
    const article = document.getElementById("job");
    const job = await api("GET", `/api/jobs/${encodeURIComponent(article.dataset.jobId)}`);
    job.attempts_of = `${job.attempts} of ${job.max_retries}`;
    for (const node of article.querySelectorAll("[data-field]")) {
      const name = node.dataset.field;
      node.textContent = name === "output" ? (job.output || "(no output)") : show(job[name]);
    }
    article.querySelector('[data-field="state"]').className = `badge state-${job.state}`;
    article.querySelector('[data-action="retry"]').hidden = !RETRYABLE.has(job.state);
    article.querySelector('[data-action="cancel"]').hidden = !CANCELLABLE.has(job.state);
    const rows = job.history.map((attempt) => el("tr", {},
      el("td", {}, String(attempt.attempt)),
      el("td", {}, show(attempt.worker_id)),
      el("td", {}, attempt.started_at),
      el("td", {}, show(attempt.finished_at)),
      el("td", {}, attempt.finished_at
        ? `${secondsBetween(attempt.started_at, attempt.finished_at).toFixed(2)} s` : "running"),
      el("td", {}, show(attempt.outcome) + (attempt.signal ? ` (${attempt.signal})` : "")),
      el("td", {}, show(attempt.exit_code)),
      el("td", {}, show(attempt.error))));
    if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: 8 }, "No attempts yet.")));
    article.querySelector("#history tbody").replaceChildren(...rows);
  }

  // -- start ---------------------------------------------------------------------------

  document.querySelectorAll("[data-needs-token]").forEach(guardButton);
  if (document.body.dataset.page === "index") setUpIndex();
  else if (document.body.dataset.page === "job") startLoop(refreshJob);
})();
