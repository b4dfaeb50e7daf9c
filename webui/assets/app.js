// Progressive enhancement only: every page works without this script.
// - Live updates: pages marked data-live follow /engagements/live (Server-Sent
//   Events over the session cookie). The portfolio refreshes its counts and
//   table in place; an engagement page says what changed and offers a reload
//   (never replaces a form the reader may be filling in).
// - The new-engagement form hides fields that do not apply to the chosen kind.
// - A new calendar feed's address gets a "Copy address" button.
(function () {
  "use strict";

  function live(el) {
    if (!window.EventSource || !el.dataset.live) return;
    var mode = el.dataset.liveMode;
    var src = new EventSource(el.dataset.live);
    var timer = null;
    src.addEventListener("change", function (e) {
      var c;
      try { c = JSON.parse(e.data); } catch (err) { return; }
      if (mode === "notice") {
        notice(el, c);
      } else {
        clearTimeout(timer);
        timer = setTimeout(refresh, 250);
      }
    });
    src.addEventListener("error", function () {
      // The browser reconnects by itself (with Last-Event-ID). A closed
      // stream after sign-out or revocation stays closed.
      if (src.readyState === EventSource.CLOSED) src.close();
    });
  }

  function notice(el, c) {
    el.textContent = "";
    var p = document.createElement("span");
    // "admin just recorded “Renewed”.": the title is the timeline's name of the entry.
    p.textContent = (c.actor || "Someone") + " just recorded \u201c" + c.title + "\u201d.";
    var a = document.createElement("a");
    a.href = location.pathname + location.search;
    a.className = "button";
    a.textContent = "Reload to see it";
    el.appendChild(p);
    el.appendChild(a);
    el.hidden = false;
  }

  function refresh() {
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) {
        if (!res.ok || res.redirected) throw new Error("not refreshed");
        return res.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["counts", "results"].forEach(function (id) {
          var now = document.getElementById(id), next = doc.getElementById(id);
          if (now && next) now.replaceWith(next);
        });
        var status = document.getElementById("live-status");
        if (status) status.textContent = "Updated " + new Date().toLocaleTimeString();
      })
      .catch(function () {});
  }

  function kindFields(form) {
    var kind = form.querySelector("select[name=kind]");
    if (!kind) return;
    var fields = form.querySelectorAll("[data-kinds]");
    function update() {
      fields.forEach(function (f) {
        var show = !kind.value || f.dataset.kinds.split(" ").indexOf(kind.value) >= 0;
        f.hidden = !show;
        f.querySelectorAll("input, select, textarea").forEach(function (i) { i.disabled = !show; });
      });
    }
    kind.addEventListener("change", update);
    update();
  }

  function copyButton(b) {
    var input = document.getElementById(b.dataset.copy);
    if (!input || !navigator.clipboard) return;
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(input.value).then(function () {
        b.textContent = "Copied";
      }, function () {
        input.select();
      });
    });
  }

  document.querySelectorAll("[data-select-all]").forEach(function (i) {
    i.addEventListener("focus", function () { i.select(); });
  });
  document.querySelectorAll("button[data-copy]").forEach(copyButton);
  document.querySelectorAll("[data-live]").forEach(live);
  document.querySelectorAll("form.form-new").forEach(kindFields);
})();
