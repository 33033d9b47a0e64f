// devlog dashboard: small progressive enhancements (the pages work without JavaScript).
// - <time data-relative> shows "3 min ago", exact local time on hover; <time data-clock> shows
//   the local time of day.
// - Live lists keep one element per id (a resumed stream replays a short overlap).
// - The viewer's time zone is remembered in a cookie, so "today" means the viewer's day.
(function () {
  "use strict";
  var zone = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "UTC";
  if (document.cookie.indexOf("tz=" + encodeURIComponent(zone)) < 0) {
    document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
  }
  var exact = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "medium"});
  var clock = new Intl.DateTimeFormat(undefined, {hour: "2-digit", minute: "2-digit", second: "2-digit"});
  var rtf = new Intl.RelativeTimeFormat(undefined, {numeric: "auto"});
  var steps = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"], [4.35, "week"], [12, "month"], [Infinity, "year"]];

  function relative(date) {
    var v = (date.getTime() - Date.now()) / 1000;
    for (var i = 0; i < steps.length; i++) {
      if (Math.abs(v) < steps[i][0]) { return rtf.format(Math.round(v), steps[i][1]); }
      v /= steps[i][0];
    }
    return exact.format(date);
  }

  function render(root) {
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var t = times[i], d = new Date(t.getAttribute("datetime"));
      if (isNaN(d)) { continue; }
      t.title = exact.format(d);
      if (t.hasAttribute("data-relative")) { t.textContent = relative(d); }
      else if (t.hasAttribute("data-clock")) { t.textContent = clock.format(d); }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var tz = document.getElementById("tz");
    if (tz) { tz.textContent = zone; }
    render(document);
    setInterval(function () { render(document); }, 30000);
  });
  document.addEventListener("htmx:afterSettle", function (e) { render(e.target); });
  document.addEventListener("htmx:sseMessage", function (e) { render(document); });

  // A resumed stream replays a short overlap: keep one element per id in live lists.
  function dedupe() {
    var lists = document.querySelectorAll("[data-dedupe]");
    for (var i = 0; i < lists.length; i++) {
      var seen = {}, items = lists[i].children;
      for (var j = items.length - 1; j >= 0; j--) {
        var id = items[j].id;
        if (!id) { continue; }
        if (seen[id]) { items[j].remove(); } else { seen[id] = true; }
      }
    }
  }
  document.addEventListener("htmx:sseMessage", dedupe);

  // The connection state of live updates, for styling (and for tests to wait on).
  document.addEventListener("htmx:sseOpen", function () { document.documentElement.dataset.live = "open"; });
  document.addEventListener("htmx:sseError", function () { document.documentElement.dataset.live = "retrying"; });
})();
