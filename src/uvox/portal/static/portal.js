// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  function copyText(text, button) {
    var done = function () {
      var old = button.textContent;
      button.textContent = "✓";
      setTimeout(function () { button.textContent = old; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else { fallback(text); done(); }
  }
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text; area.setAttribute("readonly", "");
    area.style.position = "absolute"; area.style.left = "-9999px";
    document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more we can do */ }
    document.body.removeChild(area);
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-copy]");
    if (b) {
      var el = document.querySelector(b.getAttribute("data-copy"));
      if (el) { copyText(el.textContent.trim(), b); }
      return;
    }
    var tab = ev.target.closest(".tab[data-tab]");
    if (tab) {
      var section = tab.closest("section");
      section.querySelectorAll(".tab").forEach(function (t) { t.classList.toggle("active", t === tab); });
      section.querySelectorAll(".tabpanel").forEach(function (p) { p.classList.toggle("active", p.id === tab.getAttribute("data-tab")); });
      return;
    }
    var menu = ev.target.closest(".menu-toggle");
    if (menu) {
      var nav = document.getElementById("sidenav");
      var open = nav.classList.toggle("open");
      menu.setAttribute("aria-expanded", open ? "true" : "false");
    }
  });
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });
  // Characters and segments as you type (GSM-7: 160/153; otherwise UCS-2: 70/67).
  var gsm = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€";
  document.querySelectorAll(".counter[data-for]").forEach(function (out) {
    var area = document.getElementById(out.getAttribute("data-for"));
    if (!area) { return; }
    var update = function () {
      var t = area.value, isGsm = true, len = 0;
      for (var i = 0; i < t.length; i++) {
        var ch = t.charAt(i);
        if (gsm.indexOf(ch) < 0) { isGsm = false; break; }
        len += "^{}\\[~]|€".indexOf(ch) >= 0 ? 2 : 1;
      }
      if (!isGsm) { len = t.length; }
      var single = isGsm ? 160 : 70, multi = isGsm ? 153 : 67;
      var parts = len === 0 ? 0 : (len <= single ? 1 : Math.ceil(len / multi));
      out.textContent = len + " · " + parts + " SMS" + (isGsm ? "" : " (Unicode)");
    };
    area.addEventListener("input", update); update();
  });
  // Tables of messages follow their states while some are still waiting to be sent:
  // the page re-reads itself every few seconds and swaps the table body in place.
  var live = document.querySelector("table[data-live]");
  var pending = function (root) {
    return root.querySelector("[data-state=queued], [data-state=submitting], [data-state=submitted], [data-state=waiting_balance]");
  };
  if (live && live.id && pending(live)) {
    var started = Date.now();
    var timer = setInterval(function () {
      if (Date.now() - started > 10 * 60 * 1000 || document.hidden) {
        if (Date.now() - started > 10 * 60 * 1000) { clearInterval(timer); }
        return;
      }
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById(live.id);
          if (!fresh) { clearInterval(timer); return; }
          live.tBodies[0].replaceWith(fresh.tBodies[0]);
          if (!pending(live)) { clearInterval(timer); }
        })
        .catch(function () { clearInterval(timer); });
    }, 2000);
  }
})();
