// Cutover console: progressive enhancement, no dependencies.
// - <time datetime> in the browser's zone with a relative age;
// - a page whose <main> names a data-topic follows GET /v1/events/stream and
//   re-renders its sections from the server (focused forms are left alone);
// - the deployment chart adds every traffic change a re-render brings;
// - <pre data-follow> streams a log; <pre data-build-log> tails a build's
//   log from an offset (GET /v1/builds/ID/logs?offset=N) until it ends, and
//   keeps its text across re-renders;
// - <details id> left open stays open across re-renders;
// - a [data-refresh] element (per-second figures) re-renders the page every
//   data-refresh ms while something on it is [data-running].
"use strict";
(function () {
  var rel = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  function age(ms) {
    var s = Math.round((ms - Date.now()) / 1000), a = Math.abs(s);
    if (a < 60) return rel.format(s, "second");
    if (a < 3600) return rel.format(Math.round(s / 60), "minute");
    if (a < 86400) return rel.format(Math.round(s / 3600), "hour");
    return rel.format(Math.round(s / 86400), "day");
  }
  function times(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var ms = Date.parse(t.getAttribute("datetime"));
      if (isNaN(ms)) return;
      t.title = new Date(ms).toISOString();
      t.textContent = new Date(ms).toLocaleString() + " (" + age(ms) + ")";
    });
  }

  // The traffic chart: samples [ms, percent], drawn as a step line.
  var samples = null, lastPercent = null;
  function drawChart() {
    var fig = document.querySelector("figure.chart");
    if (!fig) return;
    if (!samples) samples = JSON.parse(fig.getAttribute("data-samples") || "[]");
    if (!samples.length) return;
    var t0 = samples[0][0], t1 = Math.max(samples[samples.length - 1][0], t0 + 1);
    var pts = [], prev = null;
    samples.forEach(function (s) {
      var x = ((s[0] - t0) / (t1 - t0)) * 600, y = 100 - s[1];
      if (prev !== null) pts.push(x.toFixed(1) + "," + (100 - prev).toFixed(1));
      pts.push(x.toFixed(1) + "," + y.toFixed(1));
      prev = s[1];
    });
    var line = fig.querySelector("polyline");
    if (line) line.setAttribute("points", pts.join(" "));
    var now = samples[samples.length - 1][1];
    var label = fig.querySelector(".now");
    if (label) label.textContent = now + "%";
    var svg = fig.querySelector("svg");
    if (svg) svg.setAttribute("aria-label", "Replacement share of production traffic: now " + now + "%");
    fig.setAttribute("data-percent", String(now));
  }
  // After a re-render: the server's figure says the split now (it owns the
  // rule, e.g. a succeeded deployment's replacement serves 100%).
  function sampleFromPage() {
    var fig = document.querySelector("figure.chart");
    if (!fig || !samples) return;
    var p = Number(fig.getAttribute("data-percent"));
    if (p !== lastPercent) {
      lastPercent = p;
      samples.push([Date.now(), p]);
    }
  }
  // A running deployment's line grows to now.
  function extendChart() {
    var fig = document.querySelector("figure.chart");
    if (!fig || !samples || !samples.length || !fig.hasAttribute("data-running")) return;
    var last = samples[samples.length - 1];
    samples.push([Date.now(), last[1]]);
    if (samples.length > 2 && samples[samples.length - 2][1] === last[1] && samples[samples.length - 3][1] === last[1]) {
      samples.splice(samples.length - 2, 1);
    }
    drawChart();
  }

  // Re-render the page's sections from the server.
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        var live = document.getElementById("live");
        if (!fresh || !live) return;
        var olds = live.children, news = fresh.children;
        if (olds.length !== news.length) {
          if (!live.contains(document.activeElement) || document.activeElement === document.body) {
            live.innerHTML = fresh.innerHTML;
          }
        } else {
          for (var i = 0; i < news.length; i++) {
            var o = olds[i], n = news[i];
            if (o.hasAttribute("data-static") || o.contains(document.activeElement)) continue;
            if (o.outerHTML !== n.outerHTML) {
              var opened = [];
              o.querySelectorAll("details[id][open]").forEach(function (d) { opened.push(d.id); });
              var fresh2 = document.importNode(n, true);
              opened.forEach(function (id) {
                var d = fresh2.querySelector("details[id='" + CSS.escape(id) + "']");
                if (d) d.open = true;
              });
              o.replaceWith(fresh2);
            }
          }
        }
        times(live);
        document.querySelectorAll("pre[data-build-log]").forEach(buildLog);
        sampleFromPage();
        drawChart();
      })
      .catch(function () {})
      .finally(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  function follow(topic) {
    if (!window.EventSource) return;
    var es = new EventSource("/v1/events/stream?topic=" + encodeURIComponent(topic));
    // Every snapshot, the first too (it may be newer than the page).
    function handle() { refresh(); }
    ["services", "alarms", "service", "deployment", "pipeline", "agents", "hostDeployment"].forEach(function (k) {
      es.addEventListener(k, handle);
    });
  }

  function logs(pre) {
    var url = pre.getAttribute("data-follow");
    if (!url || !window.ReadableStream) return;
    fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok || !r.body) return;
      pre.textContent = "";
      var reader = r.body.getReader(), dec = new TextDecoder();
      function pump() {
        return reader.read().then(function (c) {
          if (c.done) return;
          pre.textContent += dec.decode(c.value, { stream: true });
          if (pre.textContent.length > 200000) pre.textContent = pre.textContent.slice(-100000);
          pre.scrollTop = pre.scrollHeight;
          return pump();
        });
      }
      return pump();
    }).catch(function () {});
  }

  // Build logs by URL: the text so far and the next offset.
  // A re-render brings a fresh <pre>; the tail fills it from here.
  var tails = {};
  function buildLog(pre) {
    var url = pre.getAttribute("data-build-log");
    if (!url) return;
    var t = tails[url];
    if (t) { show(url); return; }
    t = tails[url] = { text: "", offset: 0 };
    function show(u) {
      var s = tails[u];
      document.querySelectorAll("pre[data-build-log]").forEach(function (p) {
        if (p.getAttribute("data-build-log") !== u) return;
        if (p.textContent !== s.text) {
          var atEnd = p.scrollTop + p.clientHeight >= p.scrollHeight - 4;
          p.textContent = s.text || "(no output yet)";
          if (atEnd) p.scrollTop = p.scrollHeight;
        }
      });
    }
    function poll() {
      fetch(url + (url.indexOf("?") < 0 ? "?" : "&") + "offset=" + t.offset, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (log) {
          if (!log) return;
          t.text += log.text;
          if (t.text.length > 200000) t.text = t.text.slice(-100000);
          t.offset = log.nextOffset;
          show(url);
          // Until the build ended and everything it wrote was read.
          if (log.finished && !log.text) return;
          setTimeout(poll, log.text ? 50 : 500);
        })
        .catch(function () {});
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    times(document);
    drawChart();
    var fig = document.querySelector("figure.chart");
    if (fig) lastPercent = Number(fig.getAttribute("data-percent") || (samples && samples.length ? samples[samples.length - 1][1] : 0));
    var main = document.getElementById("live");
    var topic = main && main.getAttribute("data-topic");
    if (topic) follow(topic);
    document.querySelectorAll("pre[data-follow]").forEach(logs);
    document.querySelectorAll("pre[data-build-log]").forEach(buildLog);
    setInterval(function () { times(document); }, 15000);
    setInterval(extendChart, 1000);
    // Figures measured by the second (data-refresh) re-render on their own
    // while something on the page runs.
    var timed = document.querySelector("[data-refresh]");
    if (timed) setInterval(function () {
      if (document.querySelector("[data-running]")) refresh();
    }, Number(timed.getAttribute("data-refresh")) || 2000);
  });
})();
